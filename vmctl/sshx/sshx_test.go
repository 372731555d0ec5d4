package sshx

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/vmctl"
)

// recorder keeps log records so tests can tell a silent contact from one
// that recorded a key.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec)
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

func (r *recorder) atLeast(l slog.Level) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rec := range r.recs {
		if rec.Level >= l {
			out = append(out, rec.Message)
		}
	}
	return out
}

// tWriter sends log lines to t.Log, shown when the test fails.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

func newTransport(t *testing.T, cfg Config) *Transport {
	t.Helper()
	tr, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in, user, addr string
		wantErr        bool
	}{
		{in: "ssh://root@192.168.77.2", user: "root", addr: "192.168.77.2:22"},
		{in: "ssh://vagrant@127.0.0.1:2222", user: "vagrant", addr: "127.0.0.1:2222"},
		{in: "ssh://root@[::1]:2200", user: "root", addr: "[::1]:2200"},
		{in: "ssh://root@dom0/", user: "root", addr: "dom0:22"},
		{in: "root@dom0", wantErr: true},
		{in: "ssh://dom0", wantErr: true},
		{in: "ssh://root:secret@dom0", wantErr: true},
		{in: "ssh://root@dom0:0", wantErr: true},
		{in: "ssh://root@dom0:65536", wantErr: true},
		{in: "ssh://root@dom0/tmp", wantErr: true},
		{in: "ssh://root@:22", wantErr: true},
		{in: "http://root@dom0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			user, addr, err := ParseTarget(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if user != tt.user || addr != tt.addr {
				t.Fatalf("got %q %q, want %q %q", user, addr, tt.user, tt.addr)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	c := newClient(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	bad := filepath.Join(t.TempDir(), "not-a-key")
	if err := os.WriteFile(bad, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no known_hosts", Config{Target: "ssh://root@h", IdentityFiles: []string{c.keyPath}}, "known_hosts"},
		{"no identity", Config{Target: "ssh://root@h", KnownHostsFile: kh}, "no identity"},
		{"missing identity", Config{Target: "ssh://root@h", KnownHostsFile: kh, IdentityFiles: []string{"/nonexistent/id"}}, "/nonexistent/id"},
		{"garbage identity", Config{Target: "ssh://root@h", KnownHostsFile: kh, IdentityFiles: []string{bad}}, bad},
		{"bad target", Config{Target: "root@h", KnownHostsFile: kh, IdentityFiles: []string{c.keyPath}}, "ssh://"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	tr, err := New(Config{Target: "ssh://root@127.0.0.1:2222", KnownHostsFile: kh, IdentityFiles: []string{c.keyPath}})
	if err != nil || tr.String() != "ssh root@127.0.0.1:2222" {
		t.Fatalf("String = %v, %v", tr, err)
	}
}

// TestHostKeyLifecycle: refused at first contact, accepted and recorded
// with AcceptNewHostKey, silent on the second contact, refused when the
// key changes — and refused commands never run.
func TestHostKeyLifecycle(t *testing.T) {
	c := newClient(t)
	srv := startSSHD(t, c, 0)
	khDir := filepath.Join(t.TempDir(), "state")
	kh := filepath.Join(khDir, "known_hosts")
	marker := filepath.Join(t.TempDir(), "ran")
	touch := []string{"touch", marker}
	hostFP := ssh.FingerprintSHA256(srv.hostKey.PublicKey())
	host := fmt.Sprintf("[127.0.0.1]:%d", srv.port)

	// 1. First contact without AcceptNewHostKey: refused, nothing recorded, nothing ran.
	tr := newTransport(t, Config{Target: srv.target(), IdentityFiles: []string{c.keyPath}, KnownHostsFile: kh})
	err := tr.Run(ctxT(t), touch, nil, nil, nil)
	var unknown *UnknownHostError
	if !errors.Is(err, ErrUnknownHost) || !errors.As(err, &unknown) {
		t.Fatalf("first contact: err = %v, want ErrUnknownHost", err)
	}
	for _, want := range []string{host, kh, hostFP, "--accept-new-host-key"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("first-contact error %q lacks %q", err, want)
		}
	}
	if _, err := os.Stat(kh); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("known_hosts written on a refused contact: %v", err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the command ran although the host was refused")
	}

	// 2. AcceptNewHostKey: runs, records exactly this key, 0600 in 0700.
	rec := &recorder{}
	tr = newTransport(t, Config{Target: srv.target(), IdentityFiles: []string{c.keyPath}, KnownHostsFile: kh,
		AcceptNewHostKey: true, Logger: slog.New(rec)})
	if err := tr.Run(ctxT(t), []string{"true"}, nil, nil, nil); err != nil {
		t.Fatalf("accept-new: %v", err)
	}
	if w := rec.atLeast(slog.LevelWarn); len(w) != 1 || !strings.Contains(w[0], "recorded") {
		t.Errorf("accept-new warnings = %q, want one about the recorded key", w)
	}
	assertMode(t, kh, 0o600)
	assertMode(t, khDir, 0o700)
	recorded, err := os.ReadFile(kh)
	if err != nil {
		t.Fatal(err)
	}
	_, hosts, key, _, rest, err := ssh.ParseKnownHosts(recorded)
	if err != nil || len(rest) != 0 {
		t.Fatalf("known_hosts %q: err %v, rest %q", recorded, err, rest)
	}
	if len(hosts) != 1 || hosts[0] != host || !bytes.Equal(key.Marshal(), srv.hostKey.PublicKey().Marshal()) {
		t.Fatalf("recorded %v %s, want %s %s", hosts, ssh.FingerprintSHA256(key), host, hostFP)
	}
	tr.Close()

	// 3. Second contact: silent, file untouched.
	rec = &recorder{}
	tr = newTransport(t, Config{Target: srv.target(), IdentityFiles: []string{c.keyPath}, KnownHostsFile: kh, Logger: slog.New(rec)})
	var out bytes.Buffer
	if err := tr.Run(ctxT(t), []string{"echo", "again"}, nil, &out, nil); err != nil || out.String() != "again\n" {
		t.Fatalf("second contact: %q, %v", out.String(), err)
	}
	if w := rec.atLeast(slog.LevelWarn); len(w) != 0 {
		t.Errorf("second contact logged %q, want silence", w)
	}
	if now, _ := os.ReadFile(kh); !bytes.Equal(now, recorded) {
		t.Errorf("known_hosts changed on a known contact: %q", now)
	}
	tr.Close()

	// 4. Same address, new host key: refused even with AcceptNewHostKey,
	// naming host, file:line and both fingerprints; the command never ran.
	srv.kill()
	srv2 := startSSHD(t, c, srv.port)
	newFP := ssh.FingerprintSHA256(srv2.hostKey.PublicKey())
	tr = newTransport(t, Config{Target: srv2.target(), IdentityFiles: []string{c.keyPath}, KnownHostsFile: kh, AcceptNewHostKey: true})
	err = tr.Run(ctxT(t), touch, nil, nil, nil)
	var changed *HostKeyChangedError
	if !errors.Is(err, ErrHostKeyChanged) || !errors.As(err, &changed) {
		t.Fatalf("changed key: err = %v, want ErrHostKeyChanged", err)
	}
	for _, want := range []string{host, kh + ":1", hostFP, newFP, "ssh-keygen -R"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("changed-key error %q lacks %q", err, want)
		}
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("the command ran on a host with a changed key")
	}
	if now, _ := os.ReadFile(kh); !bytes.Equal(now, recorded) {
		t.Errorf("known_hosts changed after a refused key: %q", now)
	}
	// Put is refused the same way.
	src := filepath.Join(t.TempDir(), "payload")
	if err := os.WriteFile(src, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := tr.Put(ctxT(t), src, marker, 0o644); !errors.Is(err, ErrHostKeyChanged) {
		t.Fatalf("Put on a changed key: err = %v", err)
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Put wrote to a host with a changed key")
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != want {
		t.Errorf("%s mode %o, want %o", path, st.Mode().Perm(), want)
	}
}

// knownTransport returns a transport whose host key is already recorded.
func knownTransport(t *testing.T, cfg func(*Config)) (*Transport, *sshd) {
	t.Helper()
	c := newClient(t)
	srv := startSSHD(t, c, 0)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	if err := appendKnownHost(kh, fmt.Sprintf("127.0.0.1:%d", srv.port), srv.hostKey.PublicKey()); err != nil {
		t.Fatal(err)
	}
	conf := Config{Target: srv.target(), IdentityFiles: []string{c.keyPath}, KnownHostsFile: kh}
	if cfg != nil {
		cfg(&conf)
	}
	return newTransport(t, conf), srv
}

func TestRunExitCodes(t *testing.T) {
	tr, _ := knownTransport(t, nil)
	tests := []struct {
		name       string
		argv       []string
		code       int // -1: success
		stderrPart string
	}{
		{name: "success", argv: []string{"true"}, code: -1},
		{name: "exit 3", argv: []string{"sh", "-c", "exit 3"}, code: 3},
		{name: "stderr kept", argv: []string{"sh", "-c", "echo oops >&2; exit 42"}, code: 42, stderrPart: "oops"},
		{name: "missing command", argv: []string{"labctl-no-such-command"}, code: 127, stderrPart: "labctl-no-such-command"},
		{name: "killed by signal", argv: []string{"sh", "-c", "kill -TERM $$"}, code: 128 + 15},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tr.Run(ctxT(t), tt.argv, nil, nil, nil)
			if tt.code < 0 {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var ee *vmctl.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("err = %v, want *vmctl.ExitError", err)
			}
			if ee.Code != tt.code || !strings.Contains(ee.Stderr, tt.stderrPart) || ee.Argv[0] != tt.argv[0] {
				t.Fatalf("ExitError = %+v, want code %d stderr ~%q", ee, tt.code, tt.stderrPart)
			}
		})
	}
}

func TestRunQuotingAndStreams(t *testing.T) {
	tr, _ := knownTransport(t, nil)
	nasty := []string{"a b", "it's", "$HOME", "*", ";touch /tmp/labctl-pwned", "", "new\nline", `back\slash`, "x=y", "-n", "~", "`id`", "$(id)", "\"dq\"", "tab\there", "ünï"}
	t.Run("argv arrives intact", func(t *testing.T) {
		var out bytes.Buffer
		argv := append([]string{"printf", "[%s]\n"}, nasty...)
		if err := tr.Run(ctxT(t), argv, nil, &out, nil); err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for _, a := range nasty {
			want.WriteString("[" + a + "]\n")
		}
		if out.String() != want.String() {
			t.Fatalf("got %q\nwant %q", out.String(), want.String())
		}
		if _, err := os.Stat("/tmp/labctl-pwned"); err == nil {
			t.Fatal("an argument was run as a command")
		}
	})
	t.Run("stdin to stdout", func(t *testing.T) {
		in := strings.Repeat("0123456789abcdef", 64*1024) // 1 MiB
		var out, errb bytes.Buffer
		if err := tr.Run(ctxT(t), []string{"cat"}, strings.NewReader(in), &out, &errb); err != nil {
			t.Fatal(err)
		}
		if out.String() != in || errb.Len() != 0 {
			t.Fatalf("cat: %d bytes out, stderr %q", out.Len(), errb.String())
		}
	})
	t.Run("stderr separate", func(t *testing.T) {
		var out, errb bytes.Buffer
		if err := tr.Run(ctxT(t), []string{"sh", "-c", "echo o; echo e >&2"}, nil, &out, &errb); err != nil {
			t.Fatal(err)
		}
		if out.String() != "o\n" || errb.String() != "e\n" {
			t.Fatalf("out %q err %q", out.String(), errb.String())
		}
	})
	t.Run("NUL refused", func(t *testing.T) {
		if err := tr.Run(ctxT(t), []string{"echo", "a\x00b"}, nil, nil, nil); err == nil {
			t.Fatal("NUL argument accepted")
		}
	})
}

// cancelCleanup removes the cancel flags the kill function leaves in /tmp.
func cancelCleanup(t *testing.T) {
	before, _ := filepath.Glob(cancelDir + "*")
	t.Cleanup(func() {
		after, _ := filepath.Glob(cancelDir + "*")
		for _, d := range after {
			if !slices.Contains(before, d) {
				os.Remove(d)
			}
		}
	})
}

// liveWith lists live (not zombie) processes whose command line contains
// token: the test's commands carry their unique temporary directory.
func liveWith(token string) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmd, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && bytes.Contains(cmd, []byte(token)) && procs.Alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

// cancelCommand runs a shell whose child outlives it unless the whole
// process tree is stopped; it says "started" once both are up.
func cancelCommand(dir string) []string {
	return []string{"sh", "-c", "sleep 30 & echo $$ $! > " + dir + "/pids; echo started; wait; touch " + dir + "/finished"}
}

// startedWriter closes started on the first write.
type startedWriter struct {
	once    sync.Once
	started chan struct{}
}

func (w *startedWriter) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.started) })
	return len(p), nil
}

// TestRunCancel is a Ctrl-C during a long remote command (make depend):
// Run returns within the bound, not when the command would have ended
// (30 s), the command and its child are gone, and the connection stays
// usable. The bound holds on a loaded machine because the kill goes
// through the canceller shell, not a new session whose login shell may
// take seconds to start (see canceller).
func TestRunCancel(t *testing.T) {
	cancelCleanup(t)
	tr, _ := knownTransport(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(tWriter{t}, nil)) })
	if err := tr.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-tr.ctl.ready:
	case <-ctxT(t).Done():
		t.Fatal("canceller shell never came up")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(ctxT(t))
	defer cancel()
	out := &startedWriter{started: make(chan struct{})}
	res := make(chan error, 1)
	go func() { res <- tr.Run(ctx, cancelCommand(dir), nil, out, nil) }()
	select {
	case <-out.started:
	case err := <-res:
		t.Fatalf("Run ended before the command started: %v", err)
	case <-ctxT(t).Done():
		t.Fatal("the command never started")
	}
	cancel()
	canceled := time.Now()
	err := <-res
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context canceled", err)
	}
	d := time.Since(canceled)
	t.Logf("Run returned %v after cancel", d)
	if d > 3*time.Second {
		t.Fatalf("Run returned %v after cancel", d)
	}
	if left := liveWith(dir); len(left) > 0 {
		t.Fatalf("processes of the canceled command still running: %v", left)
	}
	if _, err := os.Stat(filepath.Join(dir, "finished")); err == nil {
		t.Fatal("the remote command ran to its end")
	}
	if err := tr.Run(ctxT(t), []string{"true"}, nil, nil, nil); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
}

// TestRunCancelBeforeStart cancels a Run on a fresh connection, 300 ms in,
// most likely before the remote command started: Run returns long before
// the command would have ended (30 s; the 10 s bound leaves room for a
// loaded machine's shell start-up, which the canceller shell pays too),
// and the command either never starts or is stopped with its child.
func TestRunCancelBeforeStart(t *testing.T) {
	cancelCleanup(t)
	tr, _ := knownTransport(t, func(c *Config) { c.Logger = slog.New(slog.NewTextHandler(tWriter{t}, nil)) })
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(ctxT(t), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := tr.Run(ctx, cancelCommand(dir), nil, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	d := time.Since(start)
	t.Logf("Run returned %v after start", d)
	if d > 10*time.Second {
		t.Fatalf("Run returned %v after a 300ms deadline", d)
	}
	// A login shell still starting when the kill ran reaches the guard
	// later and exits there; wait until nothing of the command is left.
	deadline := time.Now().Add(20 * time.Second)
	for len(liveWith(dir)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("processes of the canceled command still running: %v", liveWith(dir))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := os.Stat(filepath.Join(dir, "finished")); err == nil {
		t.Fatal("the remote command ran to its end")
	}
	if err := tr.Run(ctxT(t), []string{"true"}, nil, nil, nil); err != nil {
		t.Fatalf("after cancel: %v", err)
	}
}

// TestRunCancelFallback: without the canceller shell a cancel still stops
// the command, through a session of its own.
func TestRunCancelFallback(t *testing.T) {
	cancelCleanup(t)
	tr, _ := knownTransport(t, nil)
	if err := tr.Connect(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	<-tr.ctl.ready
	tr.ctl.close()
	<-tr.ctl.ready
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr.ctl.mu.Lock()
		down := tr.ctl.err != nil
		tr.ctl.mu.Unlock()
		if down {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("canceller shell did not end after close")
		}
		time.Sleep(20 * time.Millisecond)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(ctxT(t))
	out := &startedWriter{started: make(chan struct{})}
	res := make(chan error, 1)
	go func() { res <- tr.Run(ctx, cancelCommand(dir), nil, out, nil) }()
	<-out.started
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context canceled", err)
	}
	if left := liveWith(dir); len(left) > 0 {
		t.Fatalf("processes of the canceled command still running: %v", left)
	}
}

func TestPutIfChanged(t *testing.T) {
	tr, _ := knownTransport(t, nil)
	ctx := ctxT(t)
	dir := t.TempDir()
	local := filepath.Join(dir, "labctl")
	remote := filepath.Join(t.TempDir(), "bin", "labctl")
	if err := os.MkdirAll(filepath.Dir(remote), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(content string) {
		if err := os.WriteFile(local, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	inode := func() uint64 {
		st, err := os.Stat(remote)
		if err != nil {
			t.Fatal(err)
		}
		return st.Sys().(*syscall.Stat_t).Ino
	}
	steps := []struct {
		name    string
		content string
		mode    os.FileMode
		changed bool
	}{
		{"first upload", "binary v1\n", 0o755, true},
		{"identical: skipped", "binary v1\n", 0o755, false},
		{"content changed", "binary v2, longer\n", 0o755, true},
		{"mode changed", "binary v2, longer\n", 0o750, true},
		{"identical again", "binary v2, longer\n", 0o750, false},
		{"empty file", "", 0o644, true},
	}
	var lastInode uint64
	for _, s := range steps {
		write(s.content)
		changed, err := PutIfChanged(ctx, tr, local, remote, s.mode)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		if changed != s.changed {
			t.Fatalf("%s: changed = %v, want %v", s.name, changed, s.changed)
		}
		got, err := os.ReadFile(remote)
		if err != nil || string(got) != s.content {
			t.Fatalf("%s: remote = %q, %v", s.name, got, err)
		}
		assertMode(t, remote, s.mode)
		// Put renames a new file in: a skipped upload keeps the inode.
		ino := inode()
		if !s.changed && ino != lastInode {
			t.Fatalf("%s: file replaced although identical", s.name)
		}
		lastInode = ino
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(remote), ".labctl-put.*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left: %v", leftovers)
	}
	// A destination directory that does not exist fails and names the path.
	err := tr.Put(ctx, local, "/nonexistent-labctl-dir/labctl", 0o755)
	var ee *vmctl.ExitError
	if !errors.As(err, &ee) || !strings.Contains(err.Error(), "/nonexistent-labctl-dir/labctl") {
		t.Fatalf("Put to a missing dir: %v", err)
	}
}

func TestSudo(t *testing.T) {
	tr, _ := knownTransport(t, func(c *Config) { c.Sudo = true })
	if _, err := os.Stat("/usr/bin/sudo"); err != nil {
		// Without sudo on the target the prefix must surface as a failure,
		// not be dropped silently.
		err := tr.Run(ctxT(t), []string{"true"}, nil, nil, nil)
		var ee *vmctl.ExitError
		if !errors.As(err, &ee) || ee.Code != 127 {
			t.Fatalf("sudo missing: err = %v, want exit 127", err)
		}
		return
	}
	var out bytes.Buffer
	if err := tr.Run(ctxT(t), []string{"id", "-u"}, nil, &out, nil); err != nil || out.String() != "0\n" {
		t.Fatalf("sudo id -u = %q, %v", out.String(), err)
	}
}

// TestKeepalive: a peer that stops answering for less than the keepalive
// budget is ridden out; one that stays silent is dropped instead of
// hanging the caller.
func TestKeepalive(t *testing.T) {
	t.Run("brief outage survived", func(t *testing.T) {
		tr, srv := knownTransport(t, func(c *Config) {
			c.KeepAliveInterval = 200 * time.Millisecond
			c.KeepAliveMax = 10
		})
		if err := tr.Connect(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		var out bytes.Buffer
		done := make(chan error, 1)
		go func() { done <- tr.Run(ctxT(t), []string{"sh", "-c", "sleep 1; echo alive"}, nil, &out, nil) }()
		time.Sleep(300 * time.Millisecond)
		srv.signalConnections(syscall.SIGSTOP)
		time.Sleep(1200 * time.Millisecond)
		srv.signalConnections(syscall.SIGCONT)
		if err := <-done; err != nil || out.String() != "alive\n" {
			t.Fatalf("run across the outage: %q, %v", out.String(), err)
		}
		if err := tr.Run(ctxT(t), []string{"true"}, nil, nil, nil); err != nil {
			t.Fatalf("after the outage: %v", err)
		}
	})
	t.Run("dead peer dropped", func(t *testing.T) {
		tr, srv := knownTransport(t, func(c *Config) {
			c.KeepAliveInterval = 100 * time.Millisecond
			c.KeepAliveMax = 3
		})
		if err := tr.Connect(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		srv.signalConnections(syscall.SIGSTOP)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		err := tr.Run(ctx, []string{"sleep", "30"}, nil, nil, nil)
		if err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("err = %v, want the connection dropped by keepalive", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("took %v to notice a dead peer", d)
		}
		// Later calls fail at once, saying why; nothing is redialled.
		err = tr.Run(ctx, []string{"true"}, nil, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "connection lost") || !strings.Contains(err.Error(), "keepalive") {
			t.Fatalf("after the drop: err = %v", err)
		}
	})
}

func TestQuoteWord(t *testing.T) {
	tests := []struct{ in, want string }{
		{"labctl", "labctl"},
		{"/usr/local/bin/labctl", "/usr/local/bin/labctl"},
		{"--target=x", "'--target=x'"},
		{"", "''"},
		{"it's", `'it'\''s'`},
		{"a b", "'a b'"},
		{"$x", "'$x'"},
	}
	for _, tt := range tests {
		if got := QuoteWord(tt.in); got != tt.want {
			t.Errorf("QuoteWord(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

func TestParseSumAndMode(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	tests := []struct {
		name    string
		in      string
		want    RemoteFile
		wantErr bool
	}{
		{name: "missing file", in: "", want: RemoteFile{}},
		{name: "present", in: sum + "  /usr/local/bin/labctl\n755\n", want: RemoteFile{Exists: true, SHA256: sum, Mode: 0o755}},
		{name: "escaped name", in: `\` + sum + "  /tmp/a\\nb\n644\n", want: RemoteFile{Exists: true, SHA256: sum, Mode: 0o644}},
		{name: "upper-case hex", in: strings.ToUpper(sum) + "  x\n600\n", want: RemoteFile{Exists: true, SHA256: sum, Mode: 0o600}},
		{name: "short sum", in: "abcd  x\n644\n", wantErr: true},
		{name: "not hex", in: strings.Repeat("zz", 32) + "  x\n644\n", wantErr: true},
		{name: "no mode", in: sum + "  x\n", wantErr: true},
		{name: "bad mode", in: sum + "  x\n999\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSumAndMode(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func FuzzParseSumAndMode(f *testing.F) {
	f.Add(strings.Repeat("ab", 32) + "  /usr/local/bin/labctl\n755\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		rf, err := ParseSumAndMode(s)
		if err != nil || !rf.Exists {
			return
		}
		if len(rf.SHA256) != 64 || rf.Mode&^os.ModePerm != 0 {
			t.Fatalf("bad result %+v", rf)
		}
	})
}

func FuzzQuoteCommand(f *testing.F) {
	f.Add("echo", "it's a $test")
	f.Fuzz(func(t *testing.T, a, b string) {
		cmd, err := QuoteCommand([]string{a, b})
		if err != nil {
			if !strings.ContainsRune(a+b, 0) {
				t.Fatalf("refused %q %q: %v", a, b, err)
			}
			return
		}
		// Each word is bare-safe or fully single-quoted; unquote and compare.
		words := splitQuoted(t, cmd)
		if len(words) != 2 || words[0] != a || words[1] != b {
			t.Fatalf("QuoteCommand(%q,%q) = %s -> %q", a, b, cmd, words)
		}
	})
}

// splitQuoted is a minimal POSIX single-quote word splitter, enough to
// undo QuoteCommand (which never emits double quotes or escapes outside
// the '\” sequence).
func splitQuoted(t *testing.T, s string) []string {
	var words []string
	var cur strings.Builder
	inWord, inQuote := false, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case inQuote:
			if ch == '\'' {
				inQuote = false
			} else {
				cur.WriteByte(ch)
			}
		case ch == '\'':
			inQuote, inWord = true, true
		case ch == '\\':
			if i+1 >= len(s) {
				t.Fatalf("dangling backslash in %q", s)
			}
			i++
			cur.WriteByte(s[i])
			inWord = true
		case ch == ' ':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			if strings.IndexByte("\"$`;&|<>()*?[]#~=!{}\t\n", ch) >= 0 {
				t.Fatalf("unquoted special %q in %q", ch, s)
			}
			cur.WriteByte(ch)
			inWord = true
		}
	}
	if inQuote {
		t.Fatalf("unterminated quote in %q", s)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}

// TestRunGuard: a command whose Run was canceled before it got going
// refuses to start once killScript raised the flag.
func TestRunGuard(t *testing.T) {
	tr, _ := knownTransport(t, nil)
	c, err := tr.conn(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	id := newRunID()
	flag := cancelDir + id
	if err := os.Mkdir(flag, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(flag) })
	marker := filepath.Join(t.TempDir(), "ran")
	cmd, err := tr.command([]string{"touch", marker}, id)
	if err != nil {
		t.Fatal(err)
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	err = sess.Run(cmd)
	var ee *ssh.ExitError
	if !errors.As(err, &ee) || ee.ExitStatus() != 130 {
		t.Fatalf("guarded run: err = %v, want exit 130", err)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("a canceled command started")
	}
}
