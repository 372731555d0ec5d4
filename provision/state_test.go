package provision

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// down removes only what labctl made (issue 10 item 1): a directory of
// the user's at <state-dir>/<lab> keeps everything, a lab's directory
// loses labctl's entries and keeps the user's, and goes only when it was
// labctl's and is empty.
func TestRemoveState(t *testing.T) {
	for _, tc := range []struct {
		name     string
		ensure   bool     // made by EnsureStateDir
		files    []string // created in it (a trailing / makes a directory)
		keep     string
		wantLeft []string // entries still there
		wantDir  bool     // the directory itself still there
		reported []string
	}{
		{name: "the user's directory", files: []string{"important.txt"},
			wantLeft: []string{"important.txt"}, wantDir: true, reported: []string{"important.txt"}},
		{name: "the user's directory with our names", files: []string{"users/", "images/"},
			wantLeft: []string{"images", "users"}, wantDir: true, reported: []string{"images", "users"}},
		{name: "ours", ensure: true, files: []string{"lock", JournalFile, "dnsmasq/", "guests/"}},
		{name: "ours with a file of the user's", ensure: true, files: []string{"lock", JournalFile, "notes.txt"},
			wantLeft: []string{OwnerMark, "notes.txt"}, wantDir: true, reported: []string{"notes.txt"}},
		{name: "ours keeping users", ensure: true, files: []string{"lock", "users/"}, keep: "users",
			wantLeft: []string{OwnerMark, "users"}, wantDir: true},
		{name: "older labctl's (no mark, a journal)", files: []string{JournalFile, "lock", "dnsmasq/"},
			wantDir: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			dir := StateDir(root, "rtv")
			if tc.ensure {
				if _, err := EnsureStateDir(root, "rtv"); err != nil {
					t.Fatal(err)
				}
			} else if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.files {
				p := filepath.Join(dir, f)
				var err error
				if f[len(f)-1] == '/' {
					err = os.MkdirAll(filepath.Join(p, "x"), 0o755)
				} else {
					err = os.WriteFile(p, []byte("precious\n"), 0o600)
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			left, err := RemoveState(root, "rtv", func(n string) bool { return n == tc.keep })
			if err != nil {
				t.Fatal(err)
			}
			var rep []string
			for _, p := range left {
				rep = append(rep, filepath.Base(p))
			}
			if !slices.Equal(rep, tc.reported) {
				t.Errorf("reported %v, want %v", rep, tc.reported)
			}
			ents, err := os.ReadDir(dir)
			if gotDir := err == nil; gotDir != tc.wantDir {
				t.Fatalf("directory there = %v, want %v (%v)", gotDir, tc.wantDir, err)
			}
			var got []string
			for _, e := range ents {
				got = append(got, e.Name())
			}
			if !slices.Equal(got, tc.wantLeft) {
				t.Errorf("left %v, want %v", got, tc.wantLeft)
			}
			if slices.Contains(tc.files, "important.txt") {
				if b, err := os.ReadFile(filepath.Join(dir, "important.txt")); err != nil || string(b) != "precious\n" {
					t.Errorf("the user's file: %q, %v", b, err)
				}
			}
		})
	}
}
