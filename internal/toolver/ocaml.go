package toolver

import (
	"fmt"
	"regexp"
	"sync"

	"github.com/hashicorp/go-version"
)

// MinOpam() is the opam Mirage 4 requires.
var MinOpam = sync.OnceValue(func() *version.Version { return version.Must(version.NewVersion("2.1.0")) })

var (
	ocamlToplevel = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^The OCaml toplevel, version (\S+)$`) })
	// OCaml and opam pre-releases use '~' ("5.2.0~alpha1", "2.2.0~beta2");
	// OCaml compiler variants append "+name" ("4.14.1+flambda").
	ocamlishVersion = sync.OnceValue(func() *regexp.Regexp {
		return regexp.MustCompile(`^([0-9]+\.[0-9]+(?:\.[0-9]+)?)(~[0-9A-Za-z.]+)?(\+[0-9A-Za-z.+-]+)?$`)
	})
)

// Opam parses `opam --version`: "2.1.2", or "2.2.0~beta2".
func Opam(out string) (*version.Version, error) {
	return ocamlish("opam --version", "2.1.2", firstLine(out))
}

// OCaml parses `ocaml -version` ("The OCaml toplevel, version 4.14.0") or
// `ocamlc -version` / `ocamlc --version` (a bare "5.1.0").
func OCaml(out string) (*version.Version, error) {
	s := firstLine(out)
	if m := ocamlToplevel().FindStringSubmatch(s); m != nil {
		s = m[1]
	}
	return ocamlish("ocaml -version", "4.14.0", s)
}

func ocamlish(tool, example, s string) (*version.Version, error) {
	if s == "" {
		return nil, fmt.Errorf("%s: expected a version like %s, got no output", tool, example)
	}
	m := ocamlishVersion().FindStringSubmatch(s)
	if m == nil {
		return nil, fmt.Errorf("%s: expected a version like %s, got %q", tool, example, s)
	}
	norm := m[1]
	if m[2] != "" {
		norm += "-" + m[2][1:]
	}
	norm += m[3]
	v, err := version.NewVersion(norm)
	if err != nil {
		return nil, fmt.Errorf("%s: expected a version like %s, got %q: %w", tool, example, s, err)
	}
	return v, nil
}

// Support says how far an OCaml version can build Mirage's Xen target.
type Support int

const (
	Unsupported Support = iota // no ocaml-solo5 release builds it
	Unproven                   // an ocaml-solo5 release exists, with a caveat
	Supported
)

// OCamlSupport says whether ocaml-solo5, the cross compiler Mirage's Xen
// target is built with, exists for v. ocaml-solo5 0.8.x builds 4.14.x;
// each 1.x release patches exactly one 5.x compiler: 1.0.x 5.2.1 (marked
// experimental upstream), 1.1.0 5.3.0, 1.2.x 5.4.0, 1.3.x 5.5.0 (released
// after the mirage 4.11 series, so unproven with it).
func OCamlSupport(v *version.Version) (Support, string) {
	seg := v.Segments()
	if v.Prerelease() != "" {
		return Unsupported, fmt.Sprintf("OCaml %s is a pre-release; ocaml-solo5 builds releases only", v.Original())
	}
	core := fmt.Sprintf("%d.%d.%d", seg[0], seg[1], seg[2])
	switch {
	case seg[0] == 4 && seg[1] == 14:
		return Supported, fmt.Sprintf("OCaml %s (ocaml-solo5 0.8.x)", v.Original())
	case core == "5.3.0":
		return Supported, fmt.Sprintf("OCaml %s (ocaml-solo5 1.1.0)", v.Original())
	case core == "5.4.0":
		return Supported, fmt.Sprintf("OCaml %s (ocaml-solo5 1.2.x)", v.Original())
	case core == "5.2.1":
		return Unproven, fmt.Sprintf("OCaml %s: ocaml-solo5 1.0.x supports it, marked experimental upstream", v.Original())
	case core == "5.5.0":
		return Unproven, fmt.Sprintf("OCaml %s: ocaml-solo5 1.3.x supports it, not proven with mirage < 4.12", v.Original())
	}
	return Unsupported, fmt.Sprintf("OCaml %s: no ocaml-solo5 release supports it (4.14.x, 5.3.0 or 5.4.0 do)", v.Original())
}
