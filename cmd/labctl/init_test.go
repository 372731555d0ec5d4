package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/provision"
)

// init --lab writes that lab's name (it used to keep the default's
// "mirage"), and a bad name is refused before any file is written.
func TestInitLab(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, tc := range []struct {
		name, lab, want string
		code            int
	}{
		{"default", "", "mirage", 0},
		{"named", "ux", "ux", 0},
		{"bad name", "Bad Name", "", exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".yaml")
			args := []string{"init", "-f", path}
			if tc.lab != "" {
				args = append(args, "--lab", tc.lab)
			}
			root := newRoot()
			root.SetArgs(args)
			err := root.ExecuteContext(context.Background())
			if tc.code != 0 {
				var ee *exitError
				if !errors.As(err, &ee) || ee.code != tc.code {
					t.Fatalf("err = %v, want exit %d", err, tc.code)
				}
				if _, serr := os.Stat(path); !errors.Is(serr, os.ErrNotExist) {
					t.Fatalf("a refused init left %s (stat: %v)", path, serr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			s, err := provision.LoadSpec(path)
			if err != nil {
				t.Fatal(err)
			}
			if s.Lab != tc.want {
				t.Errorf("lab = %q, want %q", s.Lab, tc.want)
			}
		})
	}
}

// users list of a lab labctl never saw fails naming it, and creates
// nothing (it used to exit 0 and make the lab's directory).
func TestUsersListUnknownLab(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	cmd := newRoot()
	cmd.SetArgs([]string{"users", "list", "--lab", "nosuchlab", "--state-dir", root})
	err := cmd.ExecuteContext(context.Background())
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitFail {
		t.Fatalf("err = %v, want exit %d", err, exitFail)
	}
	if !strings.Contains(err.Error(), "no lab nosuchlab") {
		t.Errorf("err = %q, want it to name the lab", err)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 0 {
		t.Errorf("users list wrote %v under %s", ents, root)
	}
}
