package labtest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
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
// zombies (a zombie holds no files, and reaping it is init's job). It
// reads /proc/<pid>/stat, see proc_pid_stat(5): after the command name
// in parentheses (which may hold spaces or parentheses itself) come
// state, ppid and pgrp.
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var live []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone meanwhile
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, _ := strconv.Atoi(f[2]); g == pgid {
			live = append(live, pid)
		}
	}
	return live
}
