package xen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/labctl/labctl/provision/toolver"
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
}

// Fixes, shared by the checks and their tests.
const (
	fixNested = "turn on nested VT-x/AMD-V: VBoxManage modifyvm %s --nested-hw-virt on (with the VM powered off)"
	fixMirage = "opam install 'mirage>=4.9.0' 'mirage<4.12.0'"
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
	f = append(f, checkOCaml(ctx, run, opt))
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

func checkMirage(ctx context.Context, run Runner, opt PreflightOptions) Finding {
	out, err := ask(ctx, run, opt.argv(opt.Mirage, "mirage", "--version"))
	if err != nil {
		detail := "mirage --version failed: " + err.Error()
		if notInstalled(err) {
			detail = "mirage not found"
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
