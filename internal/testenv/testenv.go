// Package testenv holds the few helpers tests share about their environment.
package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
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

// XLParse runs ../shared/tools/xl-parse (Xen 4.17's own xl, dry run) on
// one .xl text and returns the domain config xl printed as JSON, or xl's
// refusal as an error. Without the kit or its packages the test skips,
// except in CI, which runs beside ../shared and installs them.
func XLParse(t testing.TB, xl []byte) ([]byte, error) {
	t.Helper()
	kit := sharedTool(t, "xl-parse", "run.sh")
	f := filepath.Join(t.TempDir(), "guest.xl")
	if err := os.WriteFile(f, xl, 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(kit, f)
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 {
		// The kit's "cannot run" (no xl, no gcc): not a verdict.
		if InCI() {
			t.Fatalf("xl-parse cannot run (.ci/run installs it with run.sh --install): %s", errb.String())
		}
		t.Skipf("xl-parse cannot run: %s", bytes.TrimSpace(errb.Bytes()))
	}
	if err != nil {
		return nil, fmt.Errorf("xl rejects it: %w: %s", err, bytes.TrimSpace(errb.Bytes()))
	}
	return out.Bytes(), nil
}

// sharedTool is a file of ../shared/tools beside the module's root.
func sharedTool(t testing.TB, elem ...string) string {
	t.Helper()
	dir, err := os.Getwd()
	for err == nil {
		if _, e := os.Stat(filepath.Join(dir, "go.mod")); e == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			err = errors.New("no go.mod above the test's directory")
		}
		dir = parent
	}
	p := filepath.Join(append([]string{dir, "..", "shared", "tools"}, elem...)...)
	if err == nil {
		_, err = os.Stat(p)
	}
	if err != nil {
		if InCI() {
			t.Fatalf("%s: %v (CI runs beside ../shared)", p, err)
		}
		t.Skipf("shared tool not here: %v", err)
	}
	return p
}

// QuickRaceExit makes the race-built children a test starts (its own binary
// re-executed as labctl, the agent, a guest or a fake tool) exit as soon as
// they are done. The race runtime otherwise sleeps atexit_sleep_ms (default
// 1000, https://go.dev/doc/articles/race_detector#Options) before exiting,
// so that goroutines still running can report; cmd/labctl's tests start
// hundreds of such children and that second each was most of the
// package's time. A race a child finds while it runs is still reported and
// still fails it (exit 66). A GORACE that sets the option already wins.
// Call it from TestMain before m.Run; the test binary itself read GORACE at
// start, so only children are affected.
func QuickRaceExit() {
	v := os.Getenv("GORACE")
	if strings.Contains(v, "atexit_sleep_ms") {
		return
	}
	os.Setenv("GORACE", strings.TrimSpace(v+" atexit_sleep_ms=0"))
}
