package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/labctl/labctl/provision"
)

// init --lab writes that lab's name (it used to keep the default's
// "mirage"), and a bad name is refused before any file is written.
func TestInitLab(t *testing.T) {
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
