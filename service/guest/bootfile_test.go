package guest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBootFile(t *testing.T) {
	good := Boot{Config: Config{ImagePath: "/img", Interface: "eth0", Port: 8088, Hostname: "auth-1"}, ConsolePath: "/c.log", ConsoleMax: 42}
	tests := []struct {
		name    string
		write   func(path string) error
		want    Boot
		wantErr string
	}{
		{"round trip", func(p string) error { return WriteBootFile(p, good) }, good, ""},
		{"no image", func(p string) error { return WriteBootFile(p, Boot{Config: Config{Port: 1}}) }, Boot{}, "field ImagePath"},
		{"not JSON", func(p string) error { return os.WriteFile(p, []byte("--image x"), 0o600) }, Boot{}, "expected JSON of guest.Boot"},
		{"missing", func(string) error { return nil }, Boot{}, "no such file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "guest.json")
			if err := tt.write(p); err != nil {
				t.Fatal(err)
			}
			got, err := ReadBootFile(p)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ReadBootFile: err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Fatalf("ReadBootFile = %+v, want %+v", got, tt.want)
			}
			st, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if st.Mode().Perm() != 0o600 {
				t.Fatalf("boot file mode %v, want 0600", st.Mode().Perm())
			}
		})
	}
}
