package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/labtest"
)

// check --junit writes the file also when check cannot run, the abort
// as its one <error>, so CI shows red instead of "no results" (issue 12
// item 5).
func TestCheckJUnitOnAbort(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l := labtest.New(t, "ju", exe, "LABCTL_TEST_AS_CLI=1")
	for _, tc := range []struct {
		name  string
		setup []string // labctl command run first
		want  string   // in the <error>'s message
	}{
		{"lab not up", nil, "is not up"},
		{"no guests", []string{"sim", "up"}, "has no guests"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.setup != nil {
				l.MustRun(tc.setup...)
			}
			junit := filepath.Join(t.TempDir(), "check.xml")
			_, errOut, code := l.Run("check", "--target", "sim", "--junit", junit)
			if code != exitFail {
				t.Errorf("exit %d, want %d\n%s", code, exitFail, errOut)
			}
			x, err := os.ReadFile(junit)
			if err != nil {
				t.Fatalf("no JUnit file: %v\nstderr: %s", err, errOut)
			}
			if !strings.Contains(string(x), `errors="1"`) || !strings.Contains(string(x), `type="abort"`) || !strings.Contains(string(x), tc.want) {
				t.Errorf("JUnit does not carry the abort (%q):\n%s", tc.want, x)
			}
		})
	}
}
