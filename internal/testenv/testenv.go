// Package testenv holds the few helpers tests share about their environment.
package testenv

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true), where nothing that
// needs root or a system tool may skip: it must fail instead.
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireRoot skips the test when not root, except in CI where it fails.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		t.Fatal("this test needs root and CI=true: run .ci/run as root")
	}
	t.Skip("needs root (runs in CI)")
}

// RequireTool skips the test when a command is not on PATH, except in CI
// where it fails: .ci/run installs every tool the tests use.
func RequireTool(t testing.TB, names ...string) {
	t.Helper()
	for _, n := range names {
		if _, err := exec.LookPath(n); err != nil {
			if InCI() {
				t.Fatalf("%s not found on PATH: .ci/run must install it", n)
			}
			t.Skipf("%s not installed", n)
		}
	}
}

// SyncBuffer is a bytes.Buffer safe for a writer goroutine (a process's
// output, a console) and a reading test at once.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// ReadFile returns the file at filepath.Join(elem...), failing the test if
// it cannot be read: the fixtures every parser test loads from testdata/.
func ReadFile(t testing.TB, elem ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(elem...))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return b
}
