package guest

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestConsoleFileBounded: a guest that logs a line per request (issue 10
// item 13: ~135 B each, without bound) keeps at most 2 x max on disk, and
// the newest lines are in the live file.
func TestConsoleFileBounded(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "console.log")
	if err := os.WriteFile(path, []byte("--- labctl starts guest\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const max = 4096
	c, err := OpenConsoleFile(path, max)
	if err != nil {
		t.Fatal(err)
	}
	line := strings.Repeat("x", 120) + "\n"
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				if _, err := c.Write([]byte(line)); err != nil {
					t.Errorf("writer %d line %d: %v", w, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	c.Write([]byte("last line\n"))
	c.Close()
	var total int64
	for _, p := range []string{path, path + ".1"} {
		st, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if st.Size() > max {
			t.Errorf("%s is %d bytes, over %d", p, st.Size(), max)
		}
		total += st.Size()
	}
	if total > 2*max {
		t.Errorf("%d bytes on disk after 2000 lines, want at most %d", total, 2*max)
	}
	b, _ := os.ReadFile(path)
	if !bytes.HasSuffix(b, []byte("last line\n")) {
		t.Errorf("the live file does not end with the newest line")
	}
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if l != "" && l != line && l != "last line\n" {
			t.Fatalf("a torn or mixed line: %q", l)
		}
	}
}
