package toolver

import (
	"strings"
	"testing"
)

func TestOpamAndOCaml(t *testing.T) {
	tests := []struct {
		name, tool, in string
		want           string // core version; "" when an error is expected
		wantErr        string
	}{
		{"opam 2.1.2", "opam", readTestdata(t, "ocaml-opam-version-2.1.2-ocamlorg.txt"), "2.1.2", ""},
		{"opam 1.2.2", "opam", readTestdata(t, "ocaml-opam-version-1.2.2-article.txt"), "1.2.2", ""},
		{"opam beta", "opam", "2.2.0~beta2\n", "2.2.0", ""},
		{"opam junk", "opam", "opam version 2.1\n", "", "expected a version like 2.1.2"},
		{"opam empty", "opam", "", "", "no output"},
		{"toplevel 4.14.0", "ocaml", readTestdata(t, "ocaml-version-4.14.0-ocamlorg.txt"), "4.14.0", ""},
		{"ocamlc 5.1.0", "ocaml", readTestdata(t, "ocamlc-version-5.1.0-ocamlorg.txt"), "5.1.0", ""},
		{"ocamlc 4.02.3", "ocaml", readTestdata(t, "ocamlc-version-4.02.3-article.txt"), "4.2.3", ""},
		{"toplevel 5.3.0", "ocaml", "The OCaml toplevel, version 5.3.0\n", "5.3.0", ""},
		{"flambda variant", "ocaml", "4.14.1+flambda\n", "4.14.1", ""},
		{"alpha", "ocaml", "5.2.0~alpha1\n", "5.2.0", ""},
		{"banner typo", "ocaml", "The OCaml toplevel version 4.14.0\n", "", "expected a version like 4.14.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parse := OCaml
			if tt.tool == "opam" {
				parse = Opam
			}
			v, err := parse(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := v.Core().String(); got != tt.want {
				t.Fatalf("version = %s, want %s", got, tt.want)
			}
		})
	}
	v, _ := Opam("1.2.2")
	if AtLeast("opam", v, MinOpam()) == nil {
		t.Error("opam 1.2.2 passes the 2.1 minimum")
	}
}

func TestOCamlSupport(t *testing.T) {
	tests := []struct {
		in   string
		want Support
	}{
		{"4.14.0", Supported}, {"4.14.2", Supported}, {"4.14.1+flambda", Supported},
		{"5.3.0", Supported}, {"5.4.0", Supported},
		{"5.2.1", Unproven}, {"5.5.0", Unproven},
		{"4.13.1", Unsupported}, {"5.0.0", Unsupported}, {"5.1.0", Unsupported}, {"5.2.0", Unsupported},
		{"5.3.1", Unsupported}, {"4.02.3", Unsupported}, {"5.3.0~beta1", Unsupported}, {"5.4", Supported},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := OCaml(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got, detail := OCamlSupport(v); got != tt.want || !strings.Contains(detail, "OCaml "+strings.ReplaceAll(tt.in, "~", "-")) {
				t.Fatalf("OCamlSupport(%s) = %d (%s), want %d", tt.in, got, detail, tt.want)
			}
		})
	}
}

func FuzzOCaml(f *testing.F) {
	for _, s := range []string{"4.14.0", "The OCaml toplevel, version 5.3.0", "2.2.0~beta2", "4.14.1+flambda", "0.0.0++"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := OCaml(s); err != nil {
			if !strings.HasPrefix(err.Error(), "ocaml -version: expected") {
				t.Fatalf("error %q does not say what was expected", err)
			}
		} else if sup, detail := OCamlSupport(v); sup < Unsupported || sup > Supported || detail == "" {
			t.Fatalf("support %d %q", sup, detail)
		}
		if _, err := Opam(s); err != nil && !strings.HasPrefix(err.Error(), "opam --version: expected") {
			t.Fatalf("error %q does not say what was expected", err)
		}
	})
}
