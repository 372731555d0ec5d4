package procs

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

func TestAliveAndStop(t *testing.T) {
	if !Alive(os.Getpid()) {
		t.Fatal("own process not alive")
	}
	if Alive(os.Getpid(), "no-such-arg-xyz") || Alive(0) || Alive(-1) {
		t.Fatal("Alive matched what it should not")
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Between fork and exec the child still carries the test's command
	// line: wait for sleep's.
	for deadline := time.Now().Add(5 * time.Second); !Alive(pid, "sleep", "30"); time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("running sleep not alive")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Stop(ctx, pid, "sleep"); err != nil {
		t.Fatal(err)
	}
	if Alive(pid, "sleep") {
		t.Fatal("Stop returned while the process still runs")
	}
	// It is our child and not reaped: it ends a zombie, which is not
	// alive (between the signal and that, it has no command line left).
	deadline := time.Now().Add(5 * time.Second)
	for Alive(pid) {
		if time.Now().After(deadline) {
			t.Fatal("unreaped (zombie) process still reported alive")
		}
		time.Sleep(time.Millisecond)
	}
	if err := Stop(ctx, pid, "sleep"); err != nil {
		t.Fatalf("stopping a stopped process: %v", err)
	}
}

// A process that ignores SIGTERM is waited for only as long as the
// context lets Stop wait, and is left running then.
func TestStopHonoursContext(t *testing.T) {
	cmd := exec.Command("sh", "-c", "trap '' TERM; echo ready; while :; do sleep 1; done", "stubborn")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// "ready" comes after the trap is set.
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || line != "ready\n" {
		t.Fatalf("the shell said %q, %v", line, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := Stop(ctx, pid, "stubborn"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Stop of a process ignoring SIGTERM: %v, want the context's deadline", err)
	}
	if !Alive(pid, "stubborn") {
		t.Fatal("the process is gone: SIGTERM was not ignored, the test proves nothing")
	}
}

func TestPidfileAndAtomicWrite(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.pid")
	if ReadPidfile(p) != 0 {
		t.Fatal("missing pidfile read as a pid")
	}
	if err := WriteFileAtomic(p, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if ReadPidfile(p) != os.Getpid() {
		t.Fatal("pidfile not read back")
	}
	if st, _ := os.Stat(p); st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", st.Mode())
	}
	for _, junk := range []string{"", "abc", "-4", "0"} {
		os.WriteFile(p, []byte(junk), 0o600)
		if ReadPidfile(p) != 0 {
			t.Errorf("pidfile %q read as a pid", junk)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("temporary files left: %v", ents)
	}
}
