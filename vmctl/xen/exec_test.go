package xen

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/vmctl"
)

func TestLocalRunner(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name     string
		argv     []string
		stdin    string
		wantOut  string
		wantCode int // -1: no ExitError expected
		wantErr  string
		notFound bool
	}{
		{"ok with stdin", []string{"sh", "-c", "cat; echo done"}, "in\n", "in\ndone\n", -1, "", false},
		{"exit code and stderr", []string{"sh", "-c", "echo out; echo 'is an invalid domain identifier' >&2; exit 3"}, "", "out\n", 3, "is an invalid domain identifier", false},
		{"missing on PATH", []string{"labctl-no-such-tool"}, "", "", -1, "executable file not found", true},
		{"missing path", []string{"/nonexistent/xl", "list"}, "", "", -1, "no such file", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := LocalRunner{}.Run(ctx, tt.argv, strings.NewReader(tt.stdin), &out, &errb)
			if out.String() != tt.wantOut {
				t.Errorf("stdout = %q, want %q", out.String(), tt.wantOut)
			}
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
			}
			if notInstalled(err) != tt.notFound {
				t.Errorf("notInstalled = %v, want %v", !tt.notFound, tt.notFound)
			}
			var ee *vmctl.ExitError
			if tt.wantCode >= 0 {
				if !errors.As(err, &ee) || ee.Code != tt.wantCode || ee.Argv[0] != tt.argv[0] {
					t.Fatalf("err = %#v, want ExitError code %d", err, tt.wantCode)
				}
				// The caller's stderr writer still saw everything.
				if !strings.Contains(errb.String(), tt.wantErr) {
					t.Errorf("stderr writer got %q", errb.String())
				}
			}
		})
	}
	if err := (LocalRunner{}).Run(ctx, nil, nil, nil, nil); err == nil {
		t.Error("empty argv accepted")
	}
}

func TestLocalRunnerExitErrorTail(t *testing.T) {
	err := LocalRunner{}.Run(context.Background(), []string{"sh", "-c", "head -c 10000 /dev/zero | tr '\\0' a >&2; echo END >&2; exit 1"}, nil, nil, nil)
	var ee *vmctl.ExitError
	if !errors.As(err, &ee) || len(ee.Stderr) > stderrTail || !strings.HasSuffix(ee.Stderr, "END") {
		t.Fatalf("stderr tail = %d bytes ending %q", len(ee.Stderr), ee.Stderr[max(0, len(ee.Stderr)-5):])
	}
}

// Cancelling the context takes down the command's children too (make's
// compilers), not only the first process.
func TestLocalRunnerCancelKillsGroup(t *testing.T) {
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := LocalRunner{}.Run(ctx, []string{"sh", "-c", "sleep 30 & echo $! > " + pidFile + "; wait"}, nil, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	if time.Since(start) > 10*time.Second {
		t.Fatalf("Run returned after %v", time.Since(start))
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	waitFor(t, "grandchild sleep to die", func() bool { return !procs.Alive(pid) })
}

func TestLocalSpawner(t *testing.T) {
	dir := t.TempDir()
	logPath := filepath.Join(dir, "out.log")
	os.WriteFile(logPath, []byte("earlier\n"), 0o600)
	// Reads stdin until EOF: with the spawner's pipe EOF never comes, so
	// the process stays until killed, like an old xenconsole would.
	script := filepath.Join(dir, "reader")
	os.WriteFile(script, []byte("#!/bin/sh\necho attached \"$1\"\ncat >/dev/null\necho eof\n"), 0o755)
	pid, err := LocalSpawner{}.Spawn(context.Background(), []string{script, "guest-x"}, logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopProcess(pid, time.Second) })
	waitFor(t, "output", func() bool {
		b, _ := os.ReadFile(logPath)
		return string(b) == "earlier\nattached guest-x\n"
	})
	time.Sleep(100 * time.Millisecond)
	if !procs.Alive(pid, script, "guest-x") {
		t.Fatal("spawned reader exited: stdin reached EOF")
	}
	if procs.Alive(pid, "someone-else") {
		t.Fatal("processAlive matched a command line it should not")
	}
	if err := stopProcess(pid, time.Second, "guest-x"); err != nil {
		t.Fatal(err)
	}
	// Between the signal and the zombie state the exiting process has no
	// command line left: stopProcess counts that as gone already.
	waitFor(t, "reader to exit", func() bool { return !procs.Alive(pid) })
	if _, err := (LocalSpawner{}).Spawn(context.Background(), []string{"/nonexistent"}, logPath); err == nil {
		t.Fatal("spawned a missing binary")
	}
}

func TestProcessAliveZombie(t *testing.T) {
	// A child that exited but was not reaped is a zombie: not alive.
	var ready = make(chan int)
	go func() {
		p, err := os.StartProcess("/bin/true", []string{"true"}, &os.ProcAttr{})
		if err != nil {
			ready <- 0
			return
		}
		ready <- p.Pid
		time.Sleep(500 * time.Millisecond)
		p.Wait()
	}()
	pid := <-ready
	if pid == 0 {
		t.Skip("cannot start /bin/true")
	}
	waitFor(t, "zombie", func() bool {
		b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		i := bytes.LastIndexByte(b, ')')
		return i > 0 && i+2 < len(b) && b[i+2] == 'Z'
	})
	if procs.Alive(pid) {
		t.Fatal("zombie reported alive")
	}
}
