package procs

import (
	"context"
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
	if !Alive(pid, "sleep", "30") {
		t.Fatal("running sleep not alive")
	}
	// Stop returns once the process is a zombie: it is our child and not
	// reaped yet, and a zombie is not alive.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Stop(ctx, pid, "sleep"); err != nil {
		t.Fatal(err)
	}
	if Alive(pid) {
		t.Fatal("stopped (zombie) process reported alive")
	}
	if err := Stop(ctx, pid, "sleep"); err != nil {
		t.Fatalf("stopping a stopped process: %v", err)
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
