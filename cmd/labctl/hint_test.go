package main

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/spf13/cobra"
)

// Every printed "labctl …" carries the flags that chose this run's lab
// (issue 12 item 6), and only flags the named verb accepts.
func TestHint(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  string // $LABCTL_STATE_DIR
		args []string
		verb string
		want string
	}{
		{"state dir given", "", []string{"up", "--target", "sim", "--lab", "ux", "--state-dir", "/tmp/st"}, "down",
			"labctl down --target sim --lab ux --state-dir /tmp/st"},
		{"state dir default", "", []string{"up", "--target", "sim", "--lab", "ux"}, "down",
			"labctl down --target sim --lab ux"},
		{"state dir from the environment", "/srv/st", []string{"up", "--target", "sim", "--lab", "ux"}, "down",
			"labctl down --target sim --lab ux --state-dir /srv/st"},
		{"spec file", "", []string{"provision", "--target", "sim", "-f", "my lab.yaml", "--lab", "ux"}, "up",
			"labctl up --target sim --lab ux --file 'my lab.yaml'"},
		{"sim up takes no --target", "", []string{"provision", "--target", "sim", "--lab", "ux", "--state-dir", "/tmp/st"}, "sim up",
			"labctl sim up --lab ux --state-dir /tmp/st"},
		{"verb with an argument", "", []string{"up", "--target", "sim", "--lab", "ux"}, "curl GUEST",
			"labctl curl GUEST --target sim --lab ux"},
		{"no lab known yet", "", []string{"up", "--target", "local", "--state-dir", "/tmp/st"}, "teardown",
			"labctl teardown --target local --state-dir /tmp/st"},
		{"remote flags", "", []string{"provision", "--target", "ssh://u@h", "--lab", "ux", "--identity", "/k", "--known-hosts", "/kh"}, "deploy",
			"labctl deploy --target ssh://u@h --lab ux --identity /k --known-hosts /kh"},
		{"remote flags only where accepted", "", []string{"provision", "--target", "ssh://u@h", "--lab", "ux", "--identity", "/k"}, "sim up",
			"labctl sim up --lab ux"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LABCTL_STATE_DIR", tc.env)
			a := &app{}
			root := newRootFor(a)
			var got string
			hintOn(root, tc.args[0], func(cmd *cobra.Command) { got = a.hint(cmd, a.lab, tc.verb) })
			root.SetArgs(tc.args)
			if err := root.ExecuteContext(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("hint = %q\n  want %q", got, tc.want)
			}
		})
	}
}

// hintOn replaces verb's body with f.
func hintOn(root *cobra.Command, verb string, f func(*cobra.Command)) {
	for _, c := range root.Commands() {
		if c.Name() == verb {
			c.RunE = func(cmd *cobra.Command, _ []string) error { f(cmd); return nil }
		}
	}
}

// The printed hints of a real run carry --state-dir: pasted, they act on
// this lab, not on /var/lib/labctl's.
func TestHintsCarryStateDir(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l := labtest.New(t, "hi", exe, "LABCTL_TEST_AS_CLI=1")
	flags := "--lab " + l.Name + " --state-dir " + l.StateRoot

	_, errOut, code := l.Run("provision", "--target", "sim")
	if want := "labctl up --target sim " + flags; code != exitFail || !strings.Contains(errOut, want) {
		t.Errorf("provision on a lab not up: exit %d, want 1 and %q in:\n%s", code, want, errOut)
	}
	if want := "labctl sim up " + flags; !strings.Contains(errOut, want) {
		t.Errorf("provision on a lab not up: want %q in:\n%s", want, errOut)
	}

	out := l.MustRun("up", "--target", "sim")
	if want := "remove it all: labctl down --target sim " + flags + "\n"; !strings.Contains(out, want) {
		t.Errorf("up: want %q in:\n%s", want, out)
	}

	cmd := l.Command(context.Background(), nil, "users", "add", "zed", "--password-stdin")
	cmd.Stdin = strings.NewReader("a long enough password\n")
	b, err := cmd.CombinedOutput()
	if want := "run labctl deploy " + flags + " to put it"; err != nil || !strings.Contains(string(b), want) {
		t.Errorf("users add: %v, want %q in:\n%s", err, want, b)
	}
}
