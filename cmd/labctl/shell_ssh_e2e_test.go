package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/vmctl"
)

// `labctl shell dom0` to an ssh:// target: the simulated dom0's real sshd,
// labctl run inside <lab>-host, commands fed on stdin; the host key is
// verified against known_hosts, and a wrong known_hosts is refused before
// any shell starts.
func TestShellOverSSH(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t)
	if _, err := vmctl.SSHDBinary(); err != nil {
		testenv.RequireTool(t, "sshd")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l := labtest.New(t, "lh", exe, "LABCTL_TEST_AS_CLI=1")
	l.MustRun("sim", "up", "--sshd")
	dir := filepath.Join(l.StateDir(), "ssh")
	shell := func(knownHosts, script string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", l.HostNS(), exe, "shell", "dom0",
			"--target", "ssh://root@192.168.77.2", "--identity", filepath.Join(dir, "id_ed25519"),
			"--known-hosts", knownHosts, "--lab", l.Name, "--state-dir", l.StateRoot)
		cmd.Env = append(os.Environ(), "LABCTL_TEST_AS_CLI=1")
		cmd.Stdin = strings.NewReader(script)
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	out, errOut, code := shell(filepath.Join(dir, "known_hosts"), "ip -br addr show eth1\nexit 4\n")
	if code != 4 || !strings.Contains(out, "192.168.77.2/24") {
		t.Fatalf("shell dom0 over SSH: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// A known_hosts that holds another key for dom0: refused, no shell.
	other := filepath.Join(t.TempDir(), "known_hosts")
	if err := os.WriteFile(other, []byte("192.168.77.2 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPoD5ieMhdJ7JnkLXXn8VyqAh6bdrQpP1CIL3sYpX8nL\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code = shell(other, "echo SHOULD-NOT-RUN\n")
	if code == 0 || strings.Contains(out, "SHOULD-NOT-RUN") || !strings.Contains(errOut, "HOST KEY CHANGED") {
		t.Fatalf("shell dom0 with a wrong known_hosts: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// `labctl console` over SSH: the guest's record on dom0 says process
// runtime, so its console log is followed there; a reboot after the
// console started shows, and SIGTERM detaches and stops the remote tail.
func TestConsoleOverSSH(t *testing.T) {
	t.Parallel()
	s := newSSHLab(t)
	spec := fastSpec(t, "")
	s.mustHost(append([]string{"deploy", "--json", "-f", spec}, s.remote()...)...)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := append([]string{"netns", "exec", s.HostNS(), s.Exe, "console", "auth-1", "-f", spec, "--lab", s.Name, "--state-dir", s.StateRoot}, s.remote()...)
	con := exec.CommandContext(ctx, "ip", args...)
	con.Env = append(os.Environ(), "LABCTL_TEST_AS_CLI=1")
	out, errOut := &syncBuffer{}, &syncBuffer{}
	con.Stdout, con.Stderr = out, errOut
	if err := con.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- con.Wait() }()
	t.Cleanup(func() { con.Process.Kill(); <-exited })
	if !eventually(30*time.Second, func() bool { return strings.Contains(errOut.String(), "following") }) {
		t.Fatalf("console did not start:\n%s%s", out, errOut)
	}
	time.Sleep(500 * time.Millisecond) // tail -n 0 -F has opened the log
	pid := procs.ReadPidfile(filepath.Join(s.dom0Root, s.Name, "guests", "auth-1", "guest.pid"))
	syscall.Kill(pid, syscall.SIGKILL)
	if !eventually(5*time.Second, func() bool { return !procs.Alive(pid) }) {
		t.Fatal("guest did not die")
	}
	s.mustHost(append([]string{"deploy", "--json", "-f", spec}, s.remote()...)...)
	if !eventually(20*time.Second, func() bool { return strings.Count(out.String(), "labctl starts guest auth-1") == 1 }) {
		t.Fatalf("the reboot did not show on the console:\n%s\nstderr:\n%s", out, errOut)
	}
	con.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		exited <- err // for the cleanup
		if err != nil {
			t.Fatalf("console after SIGTERM: %v\n%s", err, errOut)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("console did not stop on SIGTERM")
	}
	logPath := filepath.Join(s.dom0Root, s.Name, "guests", "auth-1", "console.log")
	// The guest itself names its console log (guest run --console): only
	// a tail of it must be gone.
	tails := func() []string {
		var out []string
		for _, p := range procsWith(logPath) {
			if strings.Contains(p, "tail") {
				out = append(out, p)
			}
		}
		return out
	}
	if !eventually(10*time.Second, func() bool { return len(tails()) == 0 }) {
		t.Fatalf("the remote tail outlived the console: %v", tails())
	}
}

// procsWith lists the processes whose command line contains s.
func procsWith(s string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}
