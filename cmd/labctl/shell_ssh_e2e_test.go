package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/vmctl"
)

// `labctl shell dom0` to an ssh:// target: the simulated dom0's real sshd,
// labctl run inside <lab>-host, commands fed on stdin; the host key is
// verified against known_hosts, and a wrong known_hosts is refused before
// any shell starts.
func TestShellOverSSH(t *testing.T) {
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
