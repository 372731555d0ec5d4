package provision

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// A writer waits out a lock that is let go within the grace (a killed
// labctl's child between fork and exec) and says "busy" for one held
// longer.
func TestWriterLockGrace(t *testing.T) {
	dir := t.TempDir()
	hold := func() *os.File {
		f, err := os.OpenFile(filepath.Join(dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			t.Fatal(err)
		}
		return f
	}
	first := hold()
	time.AfterFunc(200*time.Millisecond, func() { first.Close() })
	lock, err := writerLock(dir, "lk")
	if err != nil {
		t.Fatalf("lock let go within the grace: %v", err)
	}
	lock.Close()

	second := hold()
	defer second.Close()
	if _, err := writerLock(dir, "lk"); err == nil || !strings.Contains(err.Error(), "lab lk is busy") {
		t.Fatalf("lock held throughout: err = %v, want busy", err)
	}
}
