package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/vmctl"
)

// The xen runtime end to end on the simulated lab, through a fake xl whose
// `create` boots the reference guest in a namespace plugged into br0 as
// vif<domid>.0 with the rendered MAC: render → create → lease → probe →
// console log → destroy all run.
func TestXenRuntimeOnSim(t *testing.T) {
	t.Parallel()
	testenvTool(t, "curl")
	l := newLab(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	xl := filepath.Join(dir, "xl")
	fakeDir := filepath.Join(dir, "xen")
	if err := os.Mkdir(fakeDir, 0o700); err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nLABCTL_TEST_AS_CLI=1 LABCTL_FAKE_XL=1 LABCTL_FAKE_XL_DIR=%s LABCTL_FAKE_XL_LAB=%s exec %s \"$@\"\n", fakeDir, l.Name, exe)
	if err := os.WriteFile(xl, []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	kernel := filepath.Join(dir, "auth.xen") // built elsewhere: xen.kernel
	if err := os.WriteFile(kernel, []byte("not really a unikernel"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := fastSpec(t, fmt.Sprintf("guests:\n  runtime: xen\nxen:\n  xl: %s\n  kernel: %s\n", xl, kernel))

	// --plan runs nothing and prints the commands and the full .xl.
	plan := l.MustRun("deploy", "--target", "sim", "-f", spec, "--plan")
	for _, want := range []string{"xl create " + filepath.Join(l.StateDir(), "guests", "auth-1", "auth-1.xl"), "type = 'pvh'", "memory = 32", "kernel = '" + kernel + "'", "on_crash = 'preserve'", "vif = ['bridge=br0,mac=00:16:3e:"} {
		if !strings.Contains(plan, want) {
			t.Errorf("plan lacks %q:\n%s", want, plan)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(fakeDir, "argv.log")); strings.Contains(string(b), "create") {
		t.Fatalf("--plan ran xl create:\n%s", b)
	}

	r := deployJSON(t, l, "-f", spec)
	g := r.Guests[0]
	if !g.Healthy || g.HostProbe != "ok" || g.IP != "192.168.77.3" {
		t.Fatalf("xen guest: %+v", g)
	}
	xlText, err := os.ReadFile(filepath.Join(l.StateDir(), "guests", "auth-1", "auth-1.xl"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"name = 'auth-1'", "vif = ['bridge=br0,mac=" + g.MAC + "']", "vdev=xvdb", "target=" + filepath.Join(l.StateDir(), "images", "users.img"), "extra = '--logs=*:info'"} {
		if !strings.Contains(string(xlText), want) {
			t.Errorf(".xl lacks %q:\n%s", want, xlText)
		}
	}
	// The domain's link: vif<domid>.0 in br0, the guest's MAC on the far end.
	if out := labtest.Exec(t, l.Dom0NS(), "ip", "-o", "link", "show", "master", "br0"); !strings.Contains(out, "vif1.0") {
		t.Fatalf("vif1.0 not in br0:\n%s", out)
	}
	if code, body := curl(t, l, g.URL+"?user=john&password=password"); code != 200 || body != "hello john!\n" {
		t.Fatalf("curl: %d %q", code, body)
	}
	// The console, captured through `xl console`, is what labctl logs shows.
	var logs string
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if logs = l.MustRun("logs", "auth-1", "-f", spec); strings.Contains(logs, "bound to 192.168.77.3") {
			break
		}
	}
	if !strings.Contains(logs, "bound to 192.168.77.3") {
		t.Fatalf("console log lacks the DHCP trace:\n%s", logs)
	}
	// Redeploy: the domain runs with the same config, nothing changes.
	if r2 := deployJSON(t, l, "-f", spec); r2.Changed {
		t.Fatalf("unchanged xen redeploy changed something: %+v", r2.Steps)
	}
	// Someone re-creates the domain by hand with 64 MiB: status sees the
	// live config (xl list -l) differ, deploy puts the rendered one back.
	edited := filepath.Join(dir, "edited.xl")
	if err := os.WriteFile(edited, []byte(strings.Replace(string(xlText), "memory = 32", "memory = 64", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	labtest.Exec(t, l.Dom0NS(), xl, "destroy", "auth-1")
	labtest.Exec(t, l.Dom0NS(), xl, "create", edited)
	st, code := statusJSON(t, l, "-f", spec)
	if code != exitDrift || !strings.Contains(strings.Join(st.Drift, "\n"), "guest:auth-1: live config: want as rendered, have memory") {
		t.Fatalf("status after a hand-made domain: exit %d drift %v", code, st.Drift)
	}
	if r3 := deployJSON(t, l, "-f", spec); !r3.Changed || !r3.Guests[0].Healthy {
		t.Fatalf("deploy did not repair the domain: %+v", r3.Guests)
	}
	if _, code := statusJSON(t, l, "-f", spec); code != 0 {
		t.Fatalf("status after repair: exit %d", code)
	}
	l.MustRun("destroy", "auth-1", "--target", "sim", "-f", spec)
	argv, _ := os.ReadFile(filepath.Join(fakeDir, "argv.log"))
	for _, want := range []string{"info", "list", "list -l auth-1", "create " + filepath.Join(l.StateDir(), "guests", "auth-1", "auth-1.xl"), "console auth-1", "destroy auth-1"} {
		if !strings.Contains("\n"+string(argv), "\n"+want+"\n") {
			t.Errorf("xl was not run as %q; it ran:\n%s", want, argv)
		}
	}
	if names, _ := vmctl.SimNamespaces(l.Name); len(names) != 3 {
		t.Fatalf("namespaces after destroy: %v", names)
	}
}

// --plan with the xen runtime on a machine without Xen or the OCaml
// toolchain: the findings are listed, not fatal; every command and the full
// .xl are printed; nothing runs and dom0 is unchanged.
func TestXenPlanWithoutXen(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	before := labtest.Snapshot(t, l.Dom0NS())
	missing := filepath.Join(t.TempDir(), "no-xl-here")
	spec := fastSpec(t, fmt.Sprintf("guests:\n  runtime: xen\nxen:\n  xl: %s\n  prefix: [env, PATH=/nonexistent]\n", missing))
	out, errOut, code := l.Run("deploy", "--target", "sim", "-f", spec, "--plan")
	if code != 0 {
		t.Fatalf("deploy --plan without Xen: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{
		"xen ", "fail: " + missing + " not found", "fix:", // the finding and its fix
		"mirage configure -t xen", "make depend", "make build", // the build it would run
		missing + " create " + filepath.Join(l.StateDir(), "guests", "auth-1", "auth-1.xl"),
		"type = 'pvh'", "kernel = '" + filepath.Join(l.StateDir(), "build", "auth", "dist", "auth.xen") + "'",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	if after := labtest.Snapshot(t, l.Dom0NS()); after != before {
		t.Fatalf("--plan changed dom0:\n--- before\n%s\n--- after\n%s", before, after)
	}
	if _, err := os.Stat(filepath.Join(l.StateDir(), "guests", "auth-1", "auth-1.xl")); !os.IsNotExist(err) {
		t.Fatalf("--plan wrote the .xl: %v", err)
	}
}
