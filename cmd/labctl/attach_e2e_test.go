package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/procs"
)

// syncBuffer is a bytes.Buffer a running command writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestShellCurlConsoleLogs drives the attach verbs on a deployed sim lab:
// a shell in each namespace fed through stdin, the article's request, and
// the two followers of the console log seeing a reboot that happens after
// they started, then stopping on SIGTERM.
func TestShellCurlConsoleLogs(t *testing.T) {
	t.Parallel()
	testenvTool(t, "bash") // the shell is tried as sh and as bash (--rcfile)
	l := newLab(t)
	spec := fastSpec(t, "")
	deployJSON(t, l, "-f", spec)

	shell := func(t *testing.T, env []string, which, script string) (string, string, int) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := l.Command(ctx, env, "shell", which, "--target", "sim", "-f", spec)
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
	t.Run("shell", func(t *testing.T) {
		for _, sh := range []string{"SHELL=", "SHELL=/bin/bash"} {
			out, errOut, code := shell(t, []string{sh}, "dom0", "echo ns=$LABCTL_NETNS\nip -br link show br0\nexit 3\n")
			if code != 3 || !strings.Contains(out, "ns="+l.Dom0NS()+"\n") || !strings.Contains(out, "br0") {
				t.Fatalf("%s shell dom0: exit %d\nstdout:\n%s\nstderr:\n%s", sh, code, out, errOut)
			}
			out, errOut, code = shell(t, []string{sh}, "host", "ip -br addr show vboxnet4\n")
			if code != 0 || !strings.Contains(out, "192.168.77.1/24") {
				t.Fatalf("%s shell host: exit %d\nstdout:\n%s\nstderr:\n%s", sh, code, out, errOut)
			}
		}
		if _, errOut, code := shell(t, nil, "wan", ""); code != exitUsage || !strings.Contains(errOut, "expected dom0 or host") {
			t.Fatalf("shell wan: exit %d: %s", code, errOut)
		}
	})

	t.Run("curl", func(t *testing.T) {
		out, errOut, code := l.Run("curl", "auth-1", "--target", "sim", "-f", spec)
		if code != 0 || out != "hello john!\n" {
			t.Fatalf("curl: exit %d %q\n%s", code, out, errOut)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := l.Command(ctx, nil, "curl", "auth-1", "/any/path", "--user", "john", "--password-stdin", "--target", "sim", "-f", spec)
		cmd.Stdin = strings.NewReader("wrong\n")
		b, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || string(b) != "Invalid login\n" {
			t.Fatalf("curl with a wrong password: %v %q", err, b)
		}
		if _, errOut, code := l.Run("curl", "auth-1", "no-slash", "--target", "sim", "-f", spec); code != exitUsage || !strings.Contains(errOut, "PATH") {
			t.Fatalf("curl with a relative path: exit %d: %s", code, errOut)
		}
	})

	t.Run("logs -f is --file", func(t *testing.T) {
		_, errOut, code := l.Run("logs", "-f", "auth-1")
		if code != exitUsage || !strings.Contains(errOut, "--follow") {
			t.Fatalf("logs -f auth-1: exit %d: %s", code, errOut)
		}
	})

	t.Run("followers see a reboot", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		start := func(args ...string) (*exec.Cmd, *syncBuffer, *syncBuffer) {
			cmd := l.Command(ctx, nil, append(args, "-f", spec)...)
			o, e := &syncBuffer{}, &syncBuffer{}
			cmd.Stdout, cmd.Stderr = o, e
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
			return cmd, o, e
		}
		const boot = "labctl starts guest auth-1"
		logs, logsOut, logsErr := start("logs", "--follow", "auth-1")
		con, conOut, conErr := start("console", "auth-1", "--target", "sim")
		if !eventually(20*time.Second, func() bool {
			return strings.Count(logsOut.String(), boot) == 1 && strings.Contains(conErr.String(), "following")
		}) {
			t.Fatalf("followers did not start:\nlogs: %s%s\nconsole: %s%s", logsOut, logsErr, conOut, conErr)
		}
		pid := guestPid(t, l, "auth-1")
		syscall.Kill(pid, syscall.SIGKILL)
		if !eventually(5*time.Second, func() bool { return !procs.Alive(pid) }) {
			t.Fatal("guest did not die")
		}
		deployJSON(t, l, "-f", spec)
		if !eventually(20*time.Second, func() bool {
			return strings.Count(logsOut.String(), boot) == 2 && strings.Count(conOut.String(), boot) == 1
		}) {
			t.Fatalf("the reboot did not show:\nlogs:\n%s\nconsole:\n%s", logsOut, conOut)
		}
		for name, c := range map[string]*exec.Cmd{"logs": logs, "console": con} {
			c.Process.Signal(syscall.SIGTERM)
			done := make(chan error, 1)
			go func() { done <- c.Wait() }()
			select {
			case err := <-done:
				if err != nil {
					t.Fatalf("%s after SIGTERM: %v", name, err)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not stop on SIGTERM", name)
			}
		}
	})

	t.Run("curl without the demo user", func(t *testing.T) {
		l.MustRun("users", "remove", "john", "-f", spec)
		_, errOut, code := l.Run("curl", "auth-1", "--target", "sim", "-f", spec)
		if code != exitUsage || !strings.Contains(errOut, "--password-stdin") {
			t.Fatalf("curl without john: exit %d: %s", code, errOut)
		}
	})
}
