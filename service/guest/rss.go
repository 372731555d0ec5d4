package guest

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ResidentKB returns a process's resident set size (VmRSS) in KiB, to
// report the reference guest's memory next to the unikernel's 32 MiB.
func ResidentKB(pid int) (int, error) {
	p := fmt.Sprintf("/proc/%d/status", pid)
	f, err := os.Open(p)
	if err != nil {
		return 0, fmt.Errorf("rss of pid %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			if err != nil {
				return 0, fmt.Errorf("rss of pid %d: %q: %w", pid, v, err)
			}
			return n, nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("rss of pid %d: %w", pid, err)
	}
	return 0, fmt.Errorf("rss of pid %d: no VmRSS in %s", pid, p)
}
