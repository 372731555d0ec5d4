package labtest

import (
	"os/exec"
	"slices"
	"syscall"
	"testing"
)

// A group with a leader and a grandchild: both are members until
// killed; once killed (and the leader reaped) the group is gone.
func TestWaitGroupGone(t *testing.T) {
	cmd := exec.Command("sh", "-c", "sleep 60 & sleep 60; wait")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	t.Cleanup(func() { syscall.Kill(-pgid, syscall.SIGKILL); cmd.Wait() })
	if live := groupMembers(pgid); !slices.Contains(live, pgid) {
		t.Fatalf("group %d: members %v lack the leader", pgid, live)
	}
	syscall.Kill(-pgid, syscall.SIGKILL)
	cmd.Wait()
	WaitGroupGone(t, pgid)
	if live := groupMembers(pgid); len(live) != 0 {
		t.Fatalf("group %d still has %v", pgid, live)
	}
}
