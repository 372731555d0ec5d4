package doctor

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func repoPins(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "scripts", "versions.env"))
	if err != nil {
		t.Fatal(err)
	}
	pins, err := ParseVersionsEnv(b, func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	return pins
}

// TestVMPlanRepoPins: the pins this checkout installs pass every check.
func TestVMPlanRepoPins(t *testing.T) {
	fs := VMPlan(repoPins(t))
	want := map[string]bool{"vm-xen": true, "vm-opam": true, "vm-ocaml": true, "vm-mirage": true, "vm-toolchain": true, "vm-depexts": true}
	for _, f := range fs {
		if f.Layer != LayerVM {
			t.Errorf("%s: layer %s", f.Check, f.Layer)
		}
		if f.Status != StatusOK {
			t.Errorf("scripts/versions.env: %s %s: %s (fix: %s)", f.Check, f.Status, f.Detail, f.Fix)
		}
		delete(want, f.Check)
	}
	if len(want) > 0 {
		t.Errorf("checks not made: %v", want)
	}
}

func TestVMPlanBadPins(t *testing.T) {
	tests := []struct {
		name, key, value string
		check            string
		status           Status
		detail, fix      string
	}{
		{"mirage before DHCP default", "MIRAGE_VERSION", "4.10.4", "vm-mirage", StatusFail, ">= 4.10.5, < 4.12.0", "MIRAGE_VERSION=4.11.1"},
		{"mirage after tested range", "MIRAGE_VERSION", "4.12.0", "vm-mirage", StatusFail, "config.ml needs", "MIRAGE_VERSION="},
		{"mirage dev pin", "MIRAGE_VERSION", "v4.11.0-3-gdeadbee", "vm-mirage", StatusFail, "development build", "MIRAGE_VERSION="},
		{"ocaml unproven", "OCAML_VERSION", "5.2.1", "vm-ocaml", StatusWarn, "5.2.1", "OCAML_VERSION=4.14.2"},
		{"ocaml unsupported", "OCAML_VERSION", "4.13.1", "vm-ocaml", StatusFail, "no ocaml-solo5 release", "OCAML_VERSION="},
		{"old xen", "XEN_MIN_VERSION", "4.8", "vm-xen", StatusFail, "below 4.10.0", "XEN_MIN_VERSION=4.10.0"},
		{"old opam", "OPAM_MIN_VERSION", "2.0.10", "vm-opam", StatusFail, "below 2.1.0", "OPAM_MIN_VERSION="},
		{"relative root", "OPAMROOT", "opam", "vm-toolchain", StatusFail, "not an absolute", "OPAMROOT=/opt/labctl/opam"},
		{"bad switch", "OPAM_SWITCH", "my switch", "vm-toolchain", StatusFail, "not an opam switch", "OPAM_SWITCH=mirage"},
		{"depext missing", "XEN_DEPEXTS", "pkg-config,linux-libc-dev", "vm-depexts", StatusFail, "lacks libseccomp-dev", "XEN_DEPEXTS=pkg-config,libseccomp-dev,linux-libc-dev"},
		{"depexts unset", "XEN_DEPEXTS", "", "vm-depexts", StatusFail, "lacks pkg-config libseccomp-dev linux-libc-dev", "XEN_DEPEXTS="},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pins := repoPins(t)
			pins[tt.key] = tt.value
			for _, f := range VMPlan(pins) {
				if f.Check != tt.check {
					if f.Status != StatusOK {
						t.Errorf("%s also failed: %+v", f.Check, f)
					}
					continue
				}
				if f.Status != tt.status || !strings.Contains(f.Detail, tt.detail) || !strings.Contains(f.Fix, tt.fix) || f.Meaning == "" {
					t.Fatalf("%s = %+v, want %s with detail ~%q, fix ~%q and a meaning", f.Check, f, tt.status, tt.detail, tt.fix)
				}
			}
		})
	}
}

func TestParseVersionsEnv(t *testing.T) {
	env := map[string]string{"MIRAGE_VERSION": "4.10.5"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	pins, err := ParseVersionsEnv([]byte("# c\n\nMIRAGE_VERSION=4.11.1\n  OCAML_VERSION=4.14.2  \nEMPTY=\n"), lookup)
	if err != nil {
		t.Fatal(err)
	}
	if pins["MIRAGE_VERSION"] != "4.10.5" || pins["OCAML_VERSION"] != "4.14.2" || pins["EMPTY"] != "" {
		t.Fatalf("pins = %v (the environment overrides the file, as in the Vagrantfile)", pins)
	}
	for _, bad := range []string{"no equals sign\n", "lower=1\n", "A B=1\n"} {
		if _, err := ParseVersionsEnv([]byte(bad), lookup); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("%q: err = %v, want a line-numbered error", bad, err)
		}
	}
}

func FuzzParseVersionsEnv(f *testing.F) {
	if b, err := os.ReadFile(filepath.Join("..", "scripts", "versions.env")); err == nil {
		f.Add(b)
	}
	f.Add([]byte("A=1\n#x\n\nB==2\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		pins, err := ParseVersionsEnv(b, func(string) (string, bool) { return "", false })
		if err != nil {
			return
		}
		for k := range pins {
			if !pinKey().MatchString(k) {
				t.Fatalf("key %q accepted", k)
			}
		}
		_ = VMPlan(pins) // never panics on any pins
	})
}

func TestVMPlanDir(t *testing.T) {
	none := func(string) (string, bool) { return "", false }
	fs := VMPlanDir("..", none)
	if len(fs) < 7 || fs[0].Check != "vm-pins" || Worst(fs) != StatusOK {
		t.Fatalf("this checkout: %+v", fs)
	}
	// The environment overrides a pin, as in the Vagrantfile.
	fs = VMPlanDir("..", func(k string) (string, bool) { return "4.9.0", k == "MIRAGE_VERSION" })
	if Worst(fs) != StatusFail {
		t.Fatalf("MIRAGE_VERSION=4.9.0 from the environment passed: %+v", fs)
	}
	fs = VMPlanDir(t.TempDir(), none)
	if len(fs) != 1 || fs[0].Status != StatusWarn || !strings.Contains(fs[0].Fix, "--target vagrant=DIR") {
		t.Fatalf("not a labctl checkout: %+v", fs)
	}
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "scripts"), 0o755)
	os.WriteFile(filepath.Join(dir, "scripts", "versions.env"), []byte("OK=1\nbroken line\n"), 0o644)
	fs = VMPlanDir(dir, none)
	if len(fs) != 1 || fs[0].Status != StatusFail || !strings.Contains(fs[0].Detail, "line 2") {
		t.Fatalf("broken versions.env: %+v", fs)
	}
}
