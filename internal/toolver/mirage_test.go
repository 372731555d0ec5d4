package toolver

import (
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/testenv"
)

func readTestdata(t testing.TB, name string) string {
	return string(testenv.ReadFile(t, "testdata", name))
}

func TestMirage(t *testing.T) {
	tests := []struct {
		name, in string
		want     string // "" when an error is expected
		inRange  bool
		wantErr  string
	}{
		{"4.8.0 skeleton readme", readTestdata(t, "mirage-version-4.8.0-skeleton-readme.txt"), "4.8.0", false, ""},
		{"2.8.0 article", readTestdata(t, "mirage-version-2.8.0-article.txt"), "2.8.0", false, ""},
		// Issue 374: 2.3.0 installed, 2.0.0 printed. Judged by what it says.
		{"stale 2.0.0", readTestdata(t, "mirage-version-2.0.0-stale-issue374.txt"), "2.0.0", false, ""},
		// 4.9.0-4.10.4: static IPv4 unless --dhcp; config.ml needs DHCP by default.
		{"4.9.0 too old", "4.9.0\n", "4.9.0", false, ""},
		{"4.10.4 too old", "4.10.4\n", "4.10.4", false, ""},
		{"4.10.5", "4.10.5\n", "4.10.5", true, ""},
		{"4.11.0", "4.11.0\n", "4.11.0", true, ""},
		{"4.11.1", "4.11.1\n", "4.11.1", true, ""},
		{"4.12.0 too new", "4.12.0\n", "4.12.0", false, ""},
		{"v prefix", "v4.11.0\n", "", false, "bare release version"},
		{"git describe", "v4.11.0-3-gdeadbee\n", "", false, "development build"},
		{"hash", "3f2a9c1\n", "", false, "bare release version"},
		{"dune subst placeholder", "%%VERSION%%\n", "", false, "bare release version"},
		{"two parts", "4.11\n", "", false, "bare release version"},
		{"empty", "\n", "", false, "no output"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := Mirage(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "mirage --version: expected") {
					t.Fatalf("err = %v, want \"mirage --version: expected ...%s...\"", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if v.String() != tt.want {
				t.Fatalf("version = %s, want %s", v, tt.want)
			}
			if MirageConstraint().Check(v) != tt.inRange {
				t.Fatalf("%s in %s = %v, want %v", v, MirageRange, !tt.inRange, tt.inRange)
			}
		})
	}
}

func FuzzMirage(f *testing.F) {
	for _, s := range []string{"4.11.0", "v4.11.0", "4.11.0-3-gdeadbee", "\n\n4.9.0\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := Mirage(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "mirage --version: expected") {
				t.Fatalf("error %q does not say what was expected", err)
			}
			return
		}
		if len(v.Segments()) != 3 || v.Prerelease() != "" || v.Metadata() != "" {
			t.Fatalf("accepted non-release %q as %s", s, v)
		}
	})
}
