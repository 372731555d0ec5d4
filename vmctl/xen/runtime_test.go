package xen

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/vmctl"
)

// testGuest is guest() with its state under a fresh temporary directory.
func testGuest(t *testing.T) vmctl.GuestSpec {
	g := guest()
	g.StateDir = filepath.Join(t.TempDir(), "guests", g.Name)
	return g
}

// newTestRuntime returns a runtime driving the fake xl; cleanup ends any
// console reader of the given guests, whatever the test did.
func newTestRuntime(t *testing.T, f *fakeEnv, guests ...vmctl.GuestSpec) (*Runtime, *bytes.Buffer) {
	var logs bytes.Buffer
	r := New(LocalRunner{}, LocalSpawner{}, slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	r.XL = f.tool("xl")
	r.ConsoleGrace = time.Second
	t.Cleanup(func() {
		for _, g := range guests {
			if pid, ok := readPID(t, ConsolePIDFile(g)); ok {
				stopProcess(pid, time.Second, "console", g.Name)
			}
		}
	})
	return r, &logs
}

func readPID(t *testing.T, path string) (int, bool) {
	if path == "" {
		return 0, false
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil
}

// waitFor polls cond for up to 30s: a deadline for "never", not a speed
// bound (the fake tools are the -race test binary; a loaded machine takes
// seconds to start one).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRuntimeLifecycle(t *testing.T) {
	f := newFakeEnv(t)
	f.copyFixture("console.txt", "console-solo5-qubes-firewall.txt")
	g := testGuest(t)
	r, logs := newTestRuntime(t, f, g)
	ctx := context.Background()

	st, err := r.State(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if st != (vmctl.GuestState{Name: g.Name, State: "stopped"}) {
		t.Fatalf("state before start = %+v", st)
	}
	f.calls()

	// Start: look, create from the rendered file, attach the console.
	if err := r.Start(ctx, g); err != nil {
		t.Fatal(err)
	}
	want := []string{"xl list", "xl create " + XLFile(g)}
	got := f.callStrings()
	// The console reader runs in the background; its call may land late.
	waitFor(t, "xl console", func() bool {
		got = append(got, f.callStrings()...)
		return len(got) >= 3
	})
	want = append(want, "xl console "+g.Name)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	rendered, _ := RenderXL(g)
	onDisk, err := os.ReadFile(XLFile(g))
	if err != nil || !bytes.Equal(onDisk, rendered) {
		t.Fatalf("%s = %q, %v; want the rendered config", XLFile(g), onDisk, err)
	}
	if fi, err := os.Stat(g.StateDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Fatalf("state dir mode = %v, %v; want 0700", fi.Mode(), err)
	}

	// The console log gets the marker and then what the guest printed.
	waitFor(t, "console output in the log", func() bool {
		b, _ := os.ReadFile(ConsoleLog(g))
		return bytes.Contains(b, []byte("[net-xen frontend] MAC: 00:16:3e:5e:6c:00"))
	})
	logText, _ := os.ReadFile(ConsoleLog(g))
	if !strings.HasPrefix(string(logText), "--- labctl: console of auth-1 from ") {
		t.Errorf("console log starts %q", firstLine(string(logText)))
	}
	pid, ok := readPID(t, ConsolePIDFile(g))
	if !ok || !procs.Alive(pid, "console", g.Name) {
		t.Fatalf("console reader pid %d (ok %v) not alive", pid, ok)
	}

	st, err = r.State(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if st != (vmctl.GuestState{Name: g.Name, Running: true, ID: 1, State: "blocked"}) {
		t.Fatalf("state after start = %+v", st)
	}
	f.calls()

	// Start again with the same spec: compare the live config, do nothing.
	if err := r.Start(ctx, g); err != nil {
		t.Fatal(err)
	}
	if got := f.callStrings(); strings.Join(got, "\n") != "xl list\nxl list -l auth-1" {
		t.Fatalf("second start calls = %q", got)
	}
	if pid2, _ := readPID(t, ConsolePIDFile(g)); pid2 != pid {
		t.Fatalf("second start replaced the console reader %d with %d", pid, pid2)
	}

	// Start with a changed spec: destroy, create again, new console reader.
	g2 := g
	g2.Memory = 48
	if err := r.Start(ctx, g2); err != nil {
		t.Fatal(err)
	}
	got = f.callStrings()
	waitFor(t, "second xl console", func() bool {
		got = append(got, f.callStrings()...)
		return len(got) >= 5
	})
	want = []string{"xl list", "xl list -l auth-1", "xl destroy auth-1", "xl create " + XLFile(g), "xl console auth-1"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.Contains(logs.String(), `reason="its config differs: memory: \"32MiB\" -> \"48MiB\""`) {
		t.Errorf("log does not say why the guest was replaced:\n%s", logs.String())
	}
	waitFor(t, "old console reader gone", func() bool { return !procs.Alive(pid, "console", g.Name) })
	pid3, ok := readPID(t, ConsolePIDFile(g))
	if !ok || pid3 == pid || !procs.Alive(pid3, "console", g.Name) {
		t.Fatalf("new console reader %d (old %d) not alive", pid3, pid)
	}
	st, _ = r.State(ctx, g2)
	if st.ID != 2 || !st.Running {
		t.Fatalf("state after replace = %+v", st)
	}
	f.calls()

	// Stop: destroy, end the reader, drop the pidfile.
	if err := r.Stop(ctx, g2); err != nil {
		t.Fatal(err)
	}
	if got := f.callStrings(); strings.Join(got, "\n") != "xl destroy auth-1" {
		t.Fatalf("stop calls = %q", got)
	}
	if procs.Alive(pid3, "console", g.Name) {
		t.Fatal("console reader still alive after Stop")
	}
	if _, err := os.Stat(ConsolePIDFile(g)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("pidfile after stop: %v", err)
	}

	// Stop again: xl says invalid domain identifier; xl list confirms; ok.
	if err := r.Stop(ctx, g2); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if got := f.callStrings(); strings.Join(got, "\n") != "xl destroy auth-1\nxl list" {
		t.Fatalf("second stop calls = %q", got)
	}
	st, _ = r.State(ctx, g2)
	if st.Running || st.State != "stopped" {
		t.Fatalf("state after stop = %+v", st)
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func TestRuntimeErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("create fails", func(t *testing.T) {
		f := newFakeEnv(t)
		g := testGuest(t)
		r, _ := newTestRuntime(t, f, g)
		f.write("fail-xl-create", "libxl: error: libxl_create.c:1234: cannot (re-)build domain: -3\n")
		err := r.Start(ctx, g)
		var ee *vmctl.ExitError
		if !errors.As(err, &ee) || ee.Code != 2 || !strings.Contains(ee.Stderr, "cannot (re-)build domain") {
			t.Fatalf("err = %v, want an ExitError with xl's message", err)
		}
		if !strings.Contains(err.Error(), `guest "auth-1"`) || !strings.Contains(err.Error(), "xl create") {
			t.Fatalf("err = %v does not name the guest and command", err)
		}
		if _, err := os.Stat(ConsolePIDFile(g)); !errors.Is(err, os.ErrNotExist) {
			t.Fatal("console capture started for a guest that did not start")
		}
	})
	t.Run("bad spec runs nothing", func(t *testing.T) {
		f := newFakeEnv(t)
		g := testGuest(t)
		r, _ := newTestRuntime(t, f, g)
		g.Kernel = "auth.xen"
		if err := r.Start(ctx, g); err == nil || !strings.Contains(err.Error(), "Kernel: expected an absolute path") {
			t.Fatalf("err = %v", err)
		}
		if calls := f.calls(); len(calls) != 0 {
			t.Fatalf("calls = %v", calls)
		}
	})
	t.Run("destroy fails while domain stays", func(t *testing.T) {
		f := newFakeEnv(t)
		g := testGuest(t)
		r, _ := newTestRuntime(t, f, g)
		f.write("console.txt", "booting\n")
		if err := r.Start(ctx, g); err != nil {
			t.Fatal(err)
		}
		f.write("fail-xl-destroy", "libxl: error: domain_destroy_callback: Unable to destroy guest\n")
		err := r.Stop(ctx, g)
		if err == nil || !strings.Contains(err.Error(), "Unable to destroy guest") || !strings.Contains(err.Error(), `stop guest "auth-1"`) {
			t.Fatalf("err = %v", err)
		}
		os.Remove(filepath.Join(f.state, "fail-xl-destroy"))
		if err := r.Stop(ctx, g); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("xl missing", func(t *testing.T) {
		f := newFakeEnv(t, "mirage")
		r, _ := newTestRuntime(t, f)
		_, err := r.State(ctx, testGuest(t))
		if err == nil || !notInstalled(err) {
			t.Fatalf("err = %v, want not-installed", err)
		}
	})
	t.Run("crashed guest is replaced", func(t *testing.T) {
		f := newFakeEnv(t)
		g := testGuest(t)
		r, _ := newTestRuntime(t, f, g)
		saveXen(f.state, fakeXen{NextID: 8, Domains: []fakeDomain{{ID: 7, Name: g.Name, Flags: "--psc-", Memory: 32}}})
		st, err := r.State(ctx, g)
		if err != nil || st.Running || st.State != "crashed" || st.ID != 7 {
			t.Fatalf("state = %+v, %v", st, err)
		}
		f.calls()
		if err := r.Start(ctx, g); err != nil {
			t.Fatal(err)
		}
		got := f.callStrings()
		if len(got) < 3 || strings.Join(got[:3], "\n") != "xl list\nxl destroy auth-1\nxl create "+XLFile(g) {
			t.Fatalf("calls = %q", got)
		}
		r.Stop(ctx, g)
	})
}

func TestConfigDiff(t *testing.T) {
	g := guest()
	same := DomainConfig{Name: g.Name, Type: "pvh", Kernel: g.Kernel, MaxMemKB: 32 * 1024,
		Disks: []DomainDisk{{Target: g.Image, Vdev: "xvdb"}},
		NICs:  []DomainNIC{{MAC: g.MAC, Bridge: g.Bridge}}}
	if d := ConfigDiff(same, g); len(d) != 0 {
		t.Fatalf("diff of identical = %q", d)
	}
	tests := []struct {
		name string
		mod  func(*DomainConfig)
		want string
	}{
		{"kernel", func(c *DomainConfig) { c.Kernel = "/old.xen" }, `kernel: "/old.xen" -> "` + g.Kernel + `"`},
		{"mac", func(c *DomainConfig) { c.NICs[0].MAC = mustMAC("00:16:3e:00:00:01") }, `mac: "00:16:3e:00:00:01"`},
		{"bridge", func(c *DomainConfig) { c.NICs[0].Bridge = "xenbr0" }, `bridge: "xenbr0" -> "br0"`},
		{"image", func(c *DomainConfig) { c.Disks[0].Target = "/old.img" }, `xvdb: "/old.img"`},
		{"type", func(c *DomainConfig) { c.Type = "pv" }, `type: "pv" -> "pvh"`},
		{"extra", func(c *DomainConfig) { c.Cmdline = "-l debug" }, `extra: "-l debug" -> ""`},
		{"two nics", func(c *DomainConfig) { c.NICs = append(c.NICs, DomainNIC{}) }, "nics: 2 -> 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := same
			c.NICs = append([]DomainNIC(nil), same.NICs...)
			c.Disks = append([]DomainDisk(nil), same.Disks...)
			tt.mod(&c)
			d := ConfigDiff(c, g)
			if len(d) == 0 || !strings.Contains(strings.Join(d, "; "), tt.want) {
				t.Fatalf("diff = %q, want containing %q", d, tt.want)
			}
		})
	}
}
