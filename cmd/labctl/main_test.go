package main

import (
	"os"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/provision"
)

// The test binary doubles as labctl: when LABCTL_TEST_AS_CLI is set it
// runs main, so `labctl agent …` re-execs inside dom0 work as they do in
// use, and the tests drive the real command line.
func TestMain(m *testing.M) {
	if os.Getenv("LABCTL_FAKE_XL") == "1" {
		os.Exit(fakeXLMain(os.Args[1:]))
	}
	if os.Getenv("LABCTL_TEST_AS_CLI") == "1" {
		// The crash test's pause between steps (provision.TestStepDelay).
		if d, err := time.ParseDuration(os.Getenv("LABCTL_TEST_STEP_DELAY")); err == nil {
			provision.TestStepDelay = d
		}
		main()
		return
	}
	testenv.QuickRaceExit()
	code := m.Run()
	if builtDir != "" {
		os.RemoveAll(builtDir)
	}
	os.Exit(code)
}

// Tests run in parallel (t.Parallel first): each e2e test has a lab of its
// own (namespaces, state directory, processes; labtest.New), and most of a
// test's time is waiting on the kernel, on guests and on timeouts, not
// CPU. The few that change the process (t.Setenv, os.Chdir) stay serial,
// and Go runs those before any parallel test resumes.

// newLab starts a simulated lab (not provisioned) driven by this binary.
func newLab(t *testing.T) *labtest.Lab {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l := labtest.New(t, "lt", exe, "LABCTL_TEST_AS_CLI=1")
	l.MustRun("sim", "up")
	return l
}
