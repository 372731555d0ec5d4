package xen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/labctl/labctl/internal/toolver"
	"github.com/labctl/labctl/vmctl"
)

// Finding statuses.
const (
	StatusOK   = "ok"
	StatusWarn = "warn"
	StatusFail = "fail"
)

// Finding is the result of one preflight check.
type Finding struct {
	Check  string `json:"check"`
	Status string `json:"status"` // ok, warn or fail
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
}

// PreflightOptions names the tools to ask. Empty names mean the usual
// ones on PATH.
type PreflightOptions struct {
	XL, Mirage, Opam, OCaml string
	// Prefix goes before the OCaml tool commands, like BuildSpec.Prefix.
	Prefix []string
	// VM is the VirtualBox VM running dom0, for the nested-virtualisation
	// fix; "dom0" when empty.
	VM string
	// OpamRoot and OpamSwitch are the spec's xen.opam_root and
	// xen.opam_switch (Prefix is already built from them); the fixes
	// name them.
	OpamRoot, OpamSwitch string
	// KnownRoots are opam roots a lab VM installs the toolchain into
	// (DefaultKnownRoots when nil): when mirage is not found and no
	// opam_root is set, one of these that exists is the fix.
	KnownRoots []string
	// PkgConfig is the pkg-config binary, "pkg-config" when empty.
	PkgConfig string
}

// DefaultKnownRoots: where scripts/install-toolchain.sh installs the
// toolchain (scripts/versions.env OPAMROOT).
var DefaultKnownRoots = []string{"/opt/labctl/opam"}

// BuildChecks are the findings that matter only when dom0 builds the
// unikernel (not when xen.kernel names one built elsewhere).
var BuildChecks = []string{"mirage", "opam", "ocaml", "opam-env", "depexts"}

// IsBuildCheck reports whether check is one of BuildChecks.
func IsBuildCheck(check string) bool {
	for _, c := range BuildChecks {
		if c == check {
			return true
		}
	}
	return false
}

// Fixes, shared by the checks and their tests.
const (
	fixNested = "turn on nested VT-x/AMD-V: VBoxManage modifyvm %s --nested-hw-virt on (with the VM powered off)"
	fixOpam   = "install opam 2.1 or later (Debian 12: apt-get install opam) and run opam init"
	fixOCaml  = "opam switch create mirage 4.14.2 (or 5.4.0), then eval $(opam env --switch=mirage)"
)

// Preflight checks that this machine can build and boot the unikernel:
// Xen >= 4.10 with hvm in virt_caps, a release mirage in the range
// config.ml accepts, opam >= 2.1, and an OCaml that ocaml-solo5 supports.
// It never fails: a missing tool is a finding, so --plan works anywhere.
func Preflight(ctx context.Context, run Runner, opt PreflightOptions) []Finding {
	var f []Finding
	f = append(f, checkXen(ctx, run, opt)...)
	f = append(f, checkMirage(ctx, run, opt))
	f = append(f, checkOpam(ctx, run, opt))
	f = append(f, checkOpamEnv(ctx, run, opt))
	f = append(f, checkOCaml(ctx, run, opt))
	f = append(f, checkDepexts(ctx, run, opt))
	return f
}

// Preflight runs Preflight through the runtime's runner and xl.
func (r *Runtime) Preflight(ctx context.Context, opt PreflightOptions) []Finding {
	if opt.XL == "" {
		opt.XL = r.XL
	}
	return Preflight(ctx, r.Runner, opt)
}

// ask runs argv and returns its stdout; stderr is folded into the error.
func ask(ctx context.Context, run Runner, argv []string) (string, error) {
	var out, errb bytes.Buffer
	err := run.Run(ctx, argv, nil, &out, &errb)
	if err != nil {
		var ee *vmctl.ExitError
		if errors.As(err, &ee) && ee.Stderr == "" {
			ee.Stderr = strings.TrimSpace(errb.String())
		}
		return "", err
	}
	return out.String(), nil
}

func checkXen(ctx context.Context, run Runner, opt PreflightOptions) []Finding {
	xl := toolName(opt.XL, "xl")
	vm := toolName(opt.VM, "dom0")
	out, err := ask(ctx, run, []string{xl, "info"})
	switch {
	case err != nil && notInstalled(err):
		return []Finding{{Check: "xen", Status: StatusFail, Detail: xl + " not found: the Xen toolstack is not installed",
			Fix: "install Xen in dom0 (Debian: apt-get install xen-system-amd64) and reboot into the Xen GRUB entry"}}
	case err != nil:
		return []Finding{{Check: "xen", Status: StatusFail, Detail: "xl info failed: " + err.Error(),
			Fix: "boot dom0 into the Xen hypervisor (GRUB entry \"with Xen hypervisor\"), start xencommons, run as root"}}
	}
	info, err := ParseInfo([]byte(out))
	if err != nil {
		return []Finding{{Check: "xen", Status: StatusFail, Detail: err.Error()}}
	}
	var f []Finding
	fixXen := "upgrade Xen to " + toolver.MinXen().String() + " or later"
	v, err := toolver.Xen(info.XenVersion)
	switch {
	case err != nil:
		f = append(f, Finding{Check: "xen-version", Status: StatusFail, Detail: err.Error(), Fix: fixXen})
	case v.LessThan(toolver.MinXen()):
		f = append(f, Finding{Check: "xen-version", Status: StatusFail,
			Detail: fmt.Sprintf("Xen %s: Mirage >= 3.9 guests boot PVH only, which needs Xen >= %s", v.Original(), toolver.MinXen()),
			Fix:    fixXen})
	default:
		f = append(f, Finding{Check: "xen-version", Status: StatusOK, Detail: "Xen " + v.Original()})
	}
	if info.HasVirtCap("hvm") {
		f = append(f, Finding{Check: "hvm", Status: StatusOK, Detail: "virt_caps: " + strings.Join(info.VirtCaps, " ")})
	} else {
		caps := strings.Join(info.VirtCaps, " ")
		if caps == "" {
			caps = "(empty)"
		}
		f = append(f, Finding{Check: "hvm", Status: StatusFail,
			Detail: "virt_caps is " + caps + ": no hvm, so PVH guests cannot start",
			Fix:    fmt.Sprintf(fixNested, vm)})
	}
	return f
}

func (o PreflightOptions) argv(tool, def string, args ...string) []string {
	argv := append([]string{}, o.Prefix...)
	argv = append(argv, toolName(tool, def))
	return append(argv, args...)
}

// opamArgs are the opam flags that name the spec's root and switch.
func (o PreflightOptions) opamArgs() string {
	if o.OpamRoot == "" {
		return ""
	}
	return "--root " + o.OpamRoot + " --switch " + o.OpamSwitch
}

func checkMirage(ctx context.Context, run Runner, opt PreflightOptions) Finding {
	fixMirage := toolver.FixMirage(opt.opamArgs())
	out, err := ask(ctx, run, opt.argv(opt.Mirage, "mirage", "--version"))
	if err != nil {
		detail := "mirage --version failed: " + err.Error()
		if notInstalled(err) {
			detail = "mirage not found"
			if opt.OpamRoot == "" && len(opt.Prefix) == 0 {
				// Installed, but not where labctl looks: the agent runs
				// with sudo's secure_path, not root's login profile.
				if root := knownRoot(ctx, run, opt); root != "" {
					detail += " on the agent's PATH (sudo's secure_path, no login profile), but an opam root exists at " + root
					fixMirage = "add to the lab spec: xen: {opam_root: " + root + ", opam_switch: SWITCH} (the switch that has mirage: OPAMROOT=" + root + " opam switch list)"
				}
			}
		}
		return Finding{Check: "mirage", Status: StatusFail, Detail: detail, Fix: fixMirage}
	}
	v, err := toolver.Mirage(out)
	if err != nil {
		return Finding{Check: "mirage", Status: StatusFail, Detail: err.Error(), Fix: fixMirage}
	}
	if !toolver.MirageConstraint().Check(v) {
		return Finding{Check: "mirage", Status: StatusFail,
			Detail: fmt.Sprintf("mirage %s: config.ml needs %s", v.Original(), toolver.MirageRange), Fix: fixMirage}
	}
	return Finding{Check: "mirage", Status: StatusOK, Detail: "mirage " + v.Original()}
}

func checkOpam(ctx context.Context, run Runner, opt PreflightOptions) Finding {
	// opam itself is never behind the prefix: the prefix may be opam.
	out, err := ask(ctx, run, []string{toolName(opt.Opam, "opam"), "--version"})
	if err != nil {
		detail := "opam --version failed: " + err.Error()
		if notInstalled(err) {
			detail = "opam not found"
		}
		return Finding{Check: "opam", Status: StatusFail, Detail: detail, Fix: fixOpam}
	}
	v, err := toolver.Opam(out)
	if err != nil {
		return Finding{Check: "opam", Status: StatusFail, Detail: err.Error(), Fix: fixOpam}
	}
	if v.LessThan(toolver.MinOpam()) {
		return Finding{Check: "opam", Status: StatusFail,
			Detail: fmt.Sprintf("opam %s: Mirage 4 needs opam >= %s", v.Original(), toolver.MinOpam()), Fix: fixOpam}
	}
	return Finding{Check: "opam", Status: StatusOK, Detail: "opam " + v.Original()}
}

func checkOCaml(ctx context.Context, run Runner, opt PreflightOptions) Finding {
	out, err := ask(ctx, run, opt.argv(opt.OCaml, "ocaml", "-version"))
	if err != nil {
		detail := "ocaml -version failed: " + err.Error()
		if notInstalled(err) {
			detail = "ocaml not found"
		}
		return Finding{Check: "ocaml", Status: StatusFail, Detail: detail, Fix: fixOCaml}
	}
	v, err := toolver.OCaml(out)
	if err != nil {
		return Finding{Check: "ocaml", Status: StatusFail, Detail: err.Error(), Fix: fixOCaml}
	}
	support, detail := toolver.OCamlSupport(v)
	switch support {
	case toolver.Supported:
		return Finding{Check: "ocaml", Status: StatusOK, Detail: detail}
	case toolver.Unproven:
		return Finding{Check: "ocaml", Status: StatusWarn, Detail: detail, Fix: fixOCaml}
	}
	return Finding{Check: "ocaml", Status: StatusFail, Detail: detail, Fix: fixOCaml}
}

// knownRoot returns the first of opt's known opam roots that exists.
func knownRoot(ctx context.Context, run Runner, opt PreflightOptions) string {
	roots := opt.KnownRoots
	if roots == nil {
		roots = DefaultKnownRoots
	}
	for _, r := range roots {
		if _, err := ask(ctx, run, []string{"test", "-f", r + "/config"}); err == nil {
			return r
		}
	}
	return ""
}

// checkOpamEnv runs `opam switch show` the way mirage's generated Makefile
// runs opam: behind the prefix, with only the environment the prefix
// gives. It fails where `make depend` would ("Opam has not been
// initialised" when OPAMROOT does not reach the inner opam).
func checkOpamEnv(ctx context.Context, run Runner, opt PreflightOptions) Finding {
	out, err := ask(ctx, run, opt.argv("", "opam", "switch", "show"))
	if err != nil {
		if notInstalled(err) {
			return Finding{Check: "opam-env", Status: StatusFail, Detail: "opam not found, so mirage's Makefile (make depend) cannot run", Fix: fixOpam}
		}
		fix := "set xen.opam_root and xen.opam_switch in the lab spec (labctl then runs opam exec --root R --switch S --set-root --set-switch)"
		if opt.OpamRoot != "" {
			fix = "check the opam root and switch: OPAMROOT=" + opt.OpamRoot + " opam switch list (scripts/install-toolchain.sh creates them)"
		}
		return Finding{Check: "opam-env", Status: StatusFail,
			Detail: "an opam run from inside the build (as mirage's Makefile does) fails: " + err.Error(), Fix: fix}
	}
	return Finding{Check: "opam-env", Status: StatusOK, Detail: "opam inside the build uses switch " + strings.TrimSpace(out)}
}

// Depexts: the system packages the xen target's opam packages need and
// opam cannot install when it has no tty (opam 2.1.2
// src/client/opamSolution.ml asks "Let opam run your package manager...?"
// with require_unsafe_yes, and src/core/opamConsole.ml answers "n" without
// a tty unless OPAMCONFIRMLEVEL=unsafe-yes). solo5 (pulled in by
// ocaml-solo5) depends on conf-pkg-config and conf-libseccomp, and
// conf-libseccomp's build is `pkg-config --exists libseccomp`
// (opam-repository packages/solo5/solo5.0.10.1, conf-libseccomp.1).
// labctl does not install system packages itself: scripts/install-xen.sh
// does on the lab VM, and this check names them elsewhere.
const fixDepexts = "apt-get install pkg-config libseccomp-dev (scripts/install-xen.sh installs them on the lab VM)"

// Depexts are those system packages, by their Debian names (solo5's
// depexts add linux-libc-dev); scripts/versions.env's XEN_DEPEXTS must
// list them all (doctor's vm-depexts check).
var Depexts = []string{"pkg-config", "libseccomp-dev", "linux-libc-dev"}

func checkDepexts(ctx context.Context, run Runner, opt PreflightOptions) Finding {
	pc := toolName(opt.PkgConfig, "pkg-config")
	_, err := ask(ctx, run, []string{pc, "--print-errors", "--exists", "libseccomp"})
	switch {
	case err == nil:
		return Finding{Check: "depexts", Status: StatusOK, Detail: "libseccomp and pkg-config (solo5's conf-libseccomp, conf-pkg-config)"}
	case notInstalled(err):
		return Finding{Check: "depexts", Status: StatusFail,
			Detail: "pkg-config not found: solo5's conf-pkg-config and conf-libseccomp fail, and opam will not install system packages without a tty", Fix: fixDepexts}
	}
	return Finding{Check: "depexts", Status: StatusFail,
		Detail: "libseccomp not found by pkg-config (solo5's conf-libseccomp): make depend would stop, since opam will not install system packages without a tty", Fix: fixDepexts}
}
