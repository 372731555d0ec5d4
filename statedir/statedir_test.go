package statedir

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The remote prepare script makes exactly the directories the layout
// names, with their modes, and leaves an existing root's mode alone.
func TestLayoutPrepare(t *testing.T) {
	for _, tc := range []struct {
		name     string
		rootMode os.FileMode // 0: the root does not exist yet
		want     os.FileMode
	}{
		{"fresh root", 0, 0o711},
		{"root of the user's", 0o755, 0o755},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "state")
			if tc.rootMode != 0 {
				if err := os.Mkdir(root, tc.rootMode); err != nil {
					t.Fatal(err)
				}
				os.Chmod(root, tc.rootMode)
			}
			l := Layout{Root: root, Lab: "mylab"}
			argv := l.Prepare()
			out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
			if err != nil || strings.TrimSpace(string(out)) == "" {
				t.Fatalf("prepare: %v\n%s", err, out)
			}
			for _, c := range []struct {
				dir  string
				mode os.FileMode
			}{
				{root, tc.want},
				{filepath.Dir(l.Agent()), 0o700},
				{l.Dir(), 0o711},
				{filepath.Dir(l.UsersImage()), 0o700},
			} {
				st, err := os.Stat(c.dir)
				if err != nil || !st.IsDir() || st.Mode().Perm() != c.mode {
					t.Errorf("%s: %v, %v; want a directory %v", c.dir, st.Mode(), err, c.mode)
				}
			}
			if l.Dir() != filepath.Join(root, "mylab") || Of(l.Dir()) != l || l.Journal() != filepath.Join(root, "mylab", JournalFile) || l.GuestFile("auth-1", "guest.json") != filepath.Join(root, "mylab", "guests", "auth-1", "guest.json") {
				t.Errorf("layout paths disagree: %+v", l)
			}
		})
	}
}
