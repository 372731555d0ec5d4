package xen

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/toolver"
)

// The range Preflight enforces must be the one config.ml declares.
func TestMirageConstraintMatchesConfigML(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "service", "unikernel", "config.ml"))
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	m := regexp.MustCompile(`^\(\* mirage >= ([0-9.]+) & < ([0-9.]+) \*\)$`).FindStringSubmatch(first)
	if m == nil {
		t.Fatalf("config.ml first line %q is not a mirage version constraint", first)
	}
	if got := ">= " + m[1] + ", < " + m[2]; got != toolver.MirageRange {
		t.Fatalf("config.ml says %q, toolver.MirageRange is %q", got, toolver.MirageRange)
	}
}

func TestPreflight(t *testing.T) {
	type want map[string]string // check -> status
	tests := []struct {
		name    string
		setup   func(f *fakeEnv)
		tools   []string // fake tools on PATH; nil = all
		want    want
		details map[string]string // check -> substring of Detail or Fix
	}{
		{"all good", func(f *fakeEnv) {
			f.copyFixture("xl-info.txt", "info-4.19.1-alpine.txt")
			f.write("mirage-version.txt", "4.11.0\n")
			f.copyFixture("opam-version.txt", "opam-version-2.1.2-ocamlorg.txt")
			f.copyFixture("ocaml-version.txt", "ocaml-version-4.14.0-ocamlorg.txt")
			f.write("opam-switch.txt", "mirage\n")
			f.write("pkg-libseccomp", "")
		}, nil, want{"xen-version": StatusOK, "hvm": StatusOK, "mirage": StatusOK, "opam": StatusOK, "ocaml": StatusOK, "opam-env": StatusOK, "depexts": StatusOK},
			map[string]string{"xen-version": "Xen 4.19.1", "mirage": "mirage 4.11.0", "opam-env": "switch mirage"}},
		{"debian 4.11 hvm only, stale mirage", func(f *fakeEnv) {
			f.copyFixture("xl-info.txt", "info-4.11.4-debian-xen-devel.txt")
			f.copyFixture("mirage-version.txt", "mirage-version-2.0.0-stale-issue374.txt")
			f.copyFixture("opam-version.txt", "opam-version-1.2.2-article.txt")
			f.copyFixture("ocaml-version.txt", "ocamlc-version-5.1.0-ocamlorg.txt")
		}, nil, want{"xen-version": StatusOK, "hvm": StatusOK, "mirage": StatusFail, "opam": StatusFail, "ocaml": StatusFail, "opam-env": StatusFail, "depexts": StatusFail},
			map[string]string{"mirage": "config.ml needs >= 4.10.5, < 4.12.0", "opam": "needs opam >= 2.1.0", "ocaml": "no ocaml-solo5 release",
				"opam-env": "Opam has not been initialised", "depexts": "libseccomp-dev"}},
		{"old xen without hvm", func(f *fakeEnv) {
			f.copyFixture("xl-info.txt", "info-4.0.1-ganeti-empty-virtcaps.txt")
			f.copyFixture("mirage-version.txt", "mirage-version-4.8.0-skeleton-readme.txt")
			f.write("opam-version.txt", "2.3.0\n")
			f.write("ocaml-version.txt", "5.4.0\n")
			f.write("opam-switch.txt", "default\n")
			f.write("pkg-libseccomp", "")
		}, nil, want{"xen-version": StatusFail, "hvm": StatusFail, "mirage": StatusFail, "opam": StatusOK, "ocaml": StatusOK, "opam-env": StatusOK, "depexts": StatusOK},
			map[string]string{"hvm": "VBoxManage modifyvm dom0 --nested-hw-virt on", "xen-version": "needs Xen >= 4.10.0"}},
		{"xen not booted, dev mirage", func(f *fakeEnv) {
			f.write("mirage-version.txt", "v4.11.0-3-gdeadbee\n")
			f.write("opam-version.txt", "2.1.5\n")
			f.write("ocaml-version.txt", "The OCaml toplevel, version 5.2.1\n")
			f.write("opam-switch.txt", "default\n")
		}, nil, want{"xen": StatusFail, "mirage": StatusFail, "opam": StatusOK, "ocaml": StatusWarn, "opam-env": StatusOK, "depexts": StatusFail},
			map[string]string{"xen": "privileged command interface", "mirage": "development build", "depexts": "not found by pkg-config"}},
		{"nothing installed", func(f *fakeEnv) {}, []string{"make"},
			want{"xen": StatusFail, "mirage": StatusFail, "opam": StatusFail, "ocaml": StatusFail, "opam-env": StatusFail, "depexts": StatusFail},
			map[string]string{"xen": "xl not found", "mirage": "mirage not found", "opam": "apt-get install opam", "ocaml": "opam switch create",
				"depexts": "libseccomp-dev"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tools := tt.tools
			f := newFakeEnv(t, tools...)
			tt.setup(f)
			got := Preflight(context.Background(), LocalRunner{}, PreflightOptions{KnownRoots: []string{}})
			statuses := map[string]string{}
			for _, fd := range got {
				statuses[fd.Check] = fd.Status
				if fd.Status != StatusOK && fd.Fix == "" {
					t.Errorf("%s: %s finding without a fix: %+v", fd.Check, fd.Status, fd)
				}
			}
			if len(statuses) != len(tt.want) {
				t.Errorf("checks = %v, want %v", statuses, tt.want)
			}
			for check, st := range tt.want {
				if statuses[check] != st {
					t.Errorf("%s = %q, want %q (all: %+v)", check, statuses[check], st, got)
				}
			}
			for check, sub := range tt.details {
				found := false
				for _, fd := range got {
					if fd.Check == check && (strings.Contains(fd.Detail, sub) || strings.Contains(fd.Fix, sub)) {
						found = true
					}
				}
				if !found {
					t.Errorf("%s: no detail or fix containing %q in %+v", check, sub, got)
				}
			}
			// Preflight only asks: exactly one version/info command per tool.
			calls := f.callStrings()
			for _, c := range calls {
				if !regexp.MustCompile(`^(xl info|mirage --version|opam --version|opam switch show|ocaml -version|pkg-config --print-errors --exists libseccomp)$`).MatchString(c) {
					t.Errorf("unexpected call %q", c)
				}
			}
		})
	}
}

func TestPreflightPrefixAndVM(t *testing.T) {
	f := newFakeEnv(t)
	f.copyFixture("xl-info.txt", "info-4.0.1-ganeti-empty-virtcaps.txt")
	f.write("mirage-version.txt", "4.10.5\n")
	f.write("opam-version.txt", "2.1.2\n")
	f.write("opam-switch.txt", "mirage\n")
	f.write("ocaml-version.txt", "4.14.2\n")
	got := Preflight(context.Background(), LocalRunner{}, PreflightOptions{
		Prefix: []string{"opam", "exec", "--"}, VM: "labctl-dom0", XL: f.tool("xl"),
	})
	var hvmFix string
	for _, fd := range got {
		if fd.Check == "hvm" {
			hvmFix = fd.Fix
		}
		if fd.Check == "mirage" && fd.Status != StatusOK {
			t.Errorf("mirage 4.10.5 through opam exec: %+v", fd)
		}
	}
	if hvmFix != "turn on nested VT-x/AMD-V: VBoxManage modifyvm labctl-dom0 --nested-hw-virt on (with the VM powered off)" {
		t.Errorf("hvm fix = %q", hvmFix)
	}
	want := []string{"xl info", "opam exec -- mirage --version", "mirage --version", "opam --version",
		"opam exec -- opam switch show", "opam switch show", "opam exec -- ocaml -version", "ocaml -version",
		"pkg-config --print-errors --exists libseccomp"}
	if got := f.callStrings(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("calls:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestPreflightFindsInstalledToolchain: mirage installed in the lab VM's
// opam root but not on the agent's PATH (sudo's secure_path) is reported
// as a spec fix, not as "install mirage".
func TestPreflightFindsInstalledToolchain(t *testing.T) {
	newFakeEnv(t, "xl", "opam", "make")
	root := t.TempDir()
	if err := os.WriteFile(filepath.Join(root, "config"), []byte("opam-version: \"2.0\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name  string
		roots []string
		want  string
	}{
		{"root present", []string{filepath.Join(t.TempDir(), "absent"), root}, "opam_root: " + root},
		{"no root", []string{filepath.Join(t.TempDir(), "absent")}, "opam install 'mirage>=4.10.5'"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, fd := range Preflight(context.Background(), LocalRunner{}, PreflightOptions{KnownRoots: tt.roots}) {
				if fd.Check == "mirage" {
					if fd.Status != StatusFail || !strings.Contains(fd.Fix, tt.want) {
						t.Fatalf("mirage finding = %+v, want a fix with %q", fd, tt.want)
					}
					return
				}
			}
			t.Fatal("no mirage finding")
		})
	}
}
