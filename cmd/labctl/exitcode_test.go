package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runCLI runs this test binary as labctl in dir (so no ./lab.yaml is
// picked up) and returns stderr and the exit code.
func runCLI(t *testing.T, dir string, args ...string) (string, int) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LABCTL_TEST_AS_CLI=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return stderr.String(), 0
	case errors.As(err, &ee):
		return stderr.String(), ee.ExitCode()
	}
	t.Fatalf("labctl %v: %v", args, err)
	return "", 0
}

// Every command line cobra refuses is bad input, exit 2 as the README
// says (issue 12 item 4); cobra's own errors made them exit 1.
func TestExitCodeUsage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := filepath.Join(dir, "state")
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in stderr
	}{
		{"unknown verb", []string{"bogus"}, exitUsage, `unknown command "bogus"`},
		{"verb typo suggests", []string{"statsu"}, exitUsage, "did you mean status"},
		{"unknown subverb", []string{"users", "bogus"}, exitUsage, `unknown command "bogus" for "labctl users"`},
		{"unknown flag", []string{"status", "--bogus"}, exitUsage, "unknown flag: --bogus"},
		{"unknown shorthand", []string{"status", "-Z"}, exitUsage, "unknown shorthand flag"},
		{"bad flag value", []string{"deploy", "--replicas", "abc"}, exitUsage, `invalid argument "abc" for "--replicas"`},
		{"flag without value", []string{"status", "--lab"}, exitUsage, "flag needs an argument"},
		{"missing argument", []string{"destroy"}, exitUsage, "accepts 1 arg(s), received 0"},
		{"missing argument of subverb", []string{"users", "add"}, exitUsage, "accepts 1 arg(s), received 0"},
		{"extra argument", []string{"provision", "extra"}, exitUsage, `unknown command "extra"`},
		{"help", []string{"--help"}, exitOK, ""},
		{"group without verb shows help", []string{"users"}, exitOK, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stderr, code := runCLI(t, dir, append([]string{"--state-dir", st}, tc.args...)...)
			if code != tc.code {
				t.Errorf("labctl %v: exit %d, want %d\nstderr: %s", tc.args, code, tc.code, stderr)
			}
			if !strings.Contains(stderr, tc.want) {
				t.Errorf("labctl %v: stderr %q, want it to contain %q", tc.args, stderr, tc.want)
			}
		})
	}
	if _, err := os.Stat(st); !os.IsNotExist(err) {
		t.Errorf("a refused command line touched the state directory (%v)", err)
	}
}

// Ctrl-C exits 130 and SIGTERM 143 (128+n, what a shell reports for a
// process killed by the signal), not 1 with "context canceled". A
// follower, which a signal is meant to stop, still exits 0.
func TestExitCodeSignal(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	// start runs labctl with stderr scanned until a line that proves it
	// is well under way (its signal handler set), then sends sig.
	// The returned func is stderr, once labctl has ended.
	start := func(t *testing.T, env []string, ready func(line string) bool, sig syscall.Signal, args ...string) (*exec.Cmd, func() string) {
		t.Helper()
		cmd := l.Command(context.Background(), env, args...)
		var errOut bytes.Buffer
		pipe := func() (io.Reader, error) { return cmd.StderrPipe() }
		if ready == nil {
			pipe = func() (io.Reader, error) { return cmd.StdoutPipe() }
			cmd.Stderr = &errOut
		}
		r, err := pipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			if ready == nil || ready(sc.Text()) {
				break
			}
		}
		if err := cmd.Process.Signal(sig); err != nil {
			t.Fatal(err)
		}
		drained := make(chan struct{})
		go func() {
			defer close(drained)
			for sc.Scan() {
				errOut.WriteString(sc.Text() + "\n")
			}
		}()
		return cmd, func() string { <-drained; return errOut.String() }
	}
	wait := func(t *testing.T, cmd *exec.Cmd) int {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return ee.ExitCode()
			}
			if err != nil {
				t.Fatal(err)
			}
			return 0
		case <-time.After(30 * time.Second):
			t.Fatal("labctl did not stop on the signal")
		}
		return -1
	}
	stepDone := func(line string) bool { return strings.HasPrefix(line, "ok ") || strings.HasPrefix(line, "changed ") }
	for _, tc := range []struct {
		sig  syscall.Signal
		code int
		want string
	}{
		{syscall.SIGINT, 130, "interrupted (SIGINT)"},
		{syscall.SIGTERM, 143, "terminated (SIGTERM)"},
	} {
		t.Run("provision "+tc.want, func(t *testing.T) {
			// The pause after each step leaves the run unfinished when
			// the signal comes.
			cmd, stderr := start(t, []string{"LABCTL_TEST_STEP_DELAY=300ms"}, stepDone, tc.sig, "provision", "--target", "sim")
			code := wait(t, cmd)
			errOut := stderr()
			t.Logf("stderr:\n%s", errOut)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstderr: %s", code, tc.code, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr does not say %q:\n%s", tc.want, errOut)
			}
		})
	}
	t.Run("logs --follow", func(t *testing.T) {
		log := filepath.Join(l.StateDir(), "guests", "auth-1", "console.log")
		if err := os.MkdirAll(filepath.Dir(log), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(log, []byte("booted\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd, stderr := start(t, nil, nil, syscall.SIGINT, "logs", "--follow", "auth-1")
		if code := wait(t, cmd); code != 0 {
			t.Errorf("exit %d, want 0 (Ctrl-C is how a follower ends)\nstderr: %s", code, stderr())
		}
	})
}

// provision --plan --detailed-exitcode follows terraform: 2 while
// something would change, 0 once nothing would; plain --plan stays 0.
func TestPlanDetailedExitcode(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
	}{
		// First: refused, so the rows after it still see changes.
		{"without --plan", []string{"provision", "--target", "sim", "--detailed-exitcode"}, exitUsage},
		{"changes", []string{"provision", "--target", "sim", "--plan", "--detailed-exitcode"}, exitPlanChanges},
		{"changes, json", []string{"provision", "--target", "sim", "--plan", "--detailed-exitcode", "--json"}, exitPlanChanges},
		{"changes without the flag", []string{"provision", "--target", "sim", "--plan"}, exitOK},
	} {
		if _, stderr, code := l.Run(tc.args...); code != tc.code {
			t.Errorf("%s: labctl %v: exit %d, want %d\n%s", tc.name, tc.args, code, tc.code, stderr)
		}
	}
	l.MustRun("provision", "--target", "sim")
	if _, stderr, code := l.Run("provision", "--target", "sim", "--plan", "--detailed-exitcode"); code != exitOK {
		t.Errorf("converged: plan --detailed-exitcode: exit %d, want 0\n%s", code, stderr)
	}
	// deploy likewise: its guests are still to start, then started.
	if _, stderr, code := l.Run("deploy", "--target", "sim", "--plan", "--detailed-exitcode"); code != exitPlanChanges {
		t.Errorf("deploy --plan --detailed-exitcode before deploy: exit %d, want %d\n%s", code, exitPlanChanges, stderr)
	}
	l.MustRun("deploy", "--target", "sim")
	if _, stderr, code := l.Run("deploy", "--target", "sim", "--plan", "--detailed-exitcode"); code != exitOK {
		t.Errorf("deploy --plan --detailed-exitcode after deploy: exit %d, want 0\n%s", code, stderr)
	}
}
