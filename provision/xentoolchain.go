package provision

import (
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
)

// The toolchain contract of the xen runtime: how labctl reaches mirage,
// make and ocaml in dom0.
//
// The agent runs through `sudo -n`, whose PATH is sudo's secure_path and
// whose environment has nothing from a login profile, so an opam switch
// that /etc/profile.d puts on root's PATH is invisible to it. labctl
// therefore runs the OCaml tools through `opam exec`. And mirage's
// generated Makefile calls opam again (`opam install ./mirage/*.opam
// --deps-only`, `opam monorepo lock`, lib/functoria/makefile.ml at mirage
// v4.11.1); those inner calls find the same root and switch only if
// OPAMROOT and OPAMSWITCH are in their environment, which `opam exec`
// exports only with --set-root and --set-switch (opam 2.1.2
// src/state/opamEnv.ml, updates_common; without them the inner opam falls
// back to ~/.opam: "Opam has not been initialised").

// opamSwitchName is a named opam switch; a local switch is an absolute
// directory instead.
var opamSwitchName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+~-]*$`) })

// ToolPrefix is what goes before mirage, make, opam and ocaml commands:
// the opam exec line when opam_root is set, else Prefix (maybe empty: the
// agent's PATH has the tools).
func (x Xen) ToolPrefix() []string {
	if x.OpamRoot == "" {
		return x.Prefix
	}
	return []string{"opam", "exec", "--root", x.OpamRoot, "--switch", x.OpamSwitch, "--set-root", "--set-switch", "--"}
}

// validateToolchain checks opam_root, opam_switch and prefix.
func (x Xen) validateToolchain() []FieldError {
	var errs []FieldError
	add := func(field, value, expected string) {
		errs = append(errs, FieldError{Field: field, Value: value, Expected: expected})
	}
	if x.OpamRoot != "" {
		if !filepath.IsAbs(x.OpamRoot) || filepath.Clean(x.OpamRoot) != x.OpamRoot || strings.ContainsAny(x.OpamRoot, "\x00\n") {
			add("xen.opam_root", x.OpamRoot, "the absolute, clean path of an opam root (the directory holding its config file), e.g. /opt/labctl/opam")
		}
		if x.OpamSwitch == "" || (!opamSwitchName().MatchString(x.OpamSwitch) && !(filepath.IsAbs(x.OpamSwitch) && filepath.Clean(x.OpamSwitch) == x.OpamSwitch)) {
			add("xen.opam_switch", x.OpamSwitch, "the switch in xen.opam_root that has mirage: a switch name such as mirage, or a local switch's absolute directory")
		}
		if len(x.Prefix) > 0 {
			add("xen.prefix", strings.Join(x.Prefix, " "), "no prefix when xen.opam_root is set (labctl builds the opam exec line itself)")
		}
	} else if x.OpamSwitch != "" {
		add("xen.opam_root", "", "the opam root that holds switch "+x.OpamSwitch+" (xen.opam_switch needs it)")
	}
	if p := x.Prefix; len(p) >= 2 && filepath.Base(p[0]) == "opam" && p[1] == "exec" {
		names := func(flag string) bool {
			return slices.ContainsFunc(p, func(a string) bool { return a == flag || strings.HasPrefix(a, flag+"=") })
		}
		if (names("--root") && !slices.Contains(p, "--set-root")) || (names("--switch") && !slices.Contains(p, "--set-switch")) {
			add("xen.prefix", strings.Join(p, " "), "opam exec with --set-root and --set-switch next to --root and --switch, or xen.opam_root and xen.opam_switch instead: "+
				"mirage's Makefile runs opam again, and without them that inner opam looks in ~/.opam")
		}
	}
	return errs
}
