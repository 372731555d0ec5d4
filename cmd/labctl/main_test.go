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
	os.Exit(m.Run())
}

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
