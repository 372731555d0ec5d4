package labtest

import (
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/procs"
)

// WaitGroupGone waits until no live process is left in process group
// pgid, after a test SIGKILLed the group. Reaping the leader is not
// enough: a child caught between fork and exec still shares the
// leader's open files (the lab lock among them) until the kernel has
// finished killing it, and a run started at once meets "busy" (CI did).
func WaitGroupGone(t testing.TB, pgid int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		live := groupMembers(pgid)
		if len(live) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("process group %d still has live members 30 s after SIGKILL: %v", pgid, live)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// groupMembers lists the pids in process group pgid that are not
// zombies (a zombie holds no files, and reaping it is init's job).
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var live []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := procs.Stat(pid); ok && st.Live() && st.PGrp == pgid {
			live = append(live, pid)
		}
	}
	return live
}
