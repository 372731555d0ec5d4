package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/service/users"
)

// Shell completion offers --target's values, the lab's users for users
// remove and dom0|host for shell, read from this machine's state.
func TestCompletion(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	d := users.Dir{Path: filepath.Join(provision.StateDir(root, "cx"), "users"), Iterations: 1000}
	for _, u := range []string{"alice", "bob"} {
		if err := d.Add(u, "a long enough password"); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		args       []string
		want, none []string
	}{
		{[]string{"status", "--target", ""}, []string{"local\t", "sim\t", "ssh://\t"}, nil},
		{[]string{"users", "remove", "--lab", "cx", "--state-dir", root, "a"}, []string{"alice"}, []string{"bob"}},
		{[]string{"shell", ""}, []string{"dom0", "host"}, nil},
		{[]string{"logs", "--lab", "cx", "--state-dir", root, ""}, nil, []string{"alice"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			cmd := newRoot()
			var out bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&bytes.Buffer{})
			cmd.SetArgs(append([]string{"__complete"}, tc.args...))
			if err := cmd.ExecuteContext(context.Background()); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("lacks %q:\n%s", w, out.String())
				}
			}
			for _, w := range tc.none {
				if strings.Contains(out.String(), w) {
					t.Errorf("offers %q:\n%s", w, out.String())
				}
			}
		})
	}
}
