package provision

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/service/unikernel"
	"github.com/labctl/labctl/vmctl/xen"
)

// The xen runtime's extra deploy steps: the toolchain preflight and the
// unikernel build (skipped when sources and toolchain are unchanged, or
// when xen.kernel names a unikernel built elsewhere).

func (d xenBuild) xenRuntime() (*xen.Runtime, error) {
	xr, ok := d.Runtimes["xen"].(*xen.Runtime)
	if !ok {
		return nil, fmt.Errorf("the xen runtime is not available here")
	}
	return xr, nil
}

// BuildSpec is the unikernel build in the lab's state directory.
func (d *Dom0) BuildSpec() (xen.BuildSpec, error) {
	src, err := unikernel.Sources()
	if err != nil {
		return xen.BuildSpec{}, err
	}
	return xen.BuildSpec{
		Name: unikernel.Name, Dir: filepath.Join(d.StateDir, "build", unikernel.Name),
		Sources: src, Prefix: d.Spec.Xen.ToolPrefix(),
	}, nil
}

// xenPreflightOptions are the spec's toolchain settings for xen.Preflight.
func (d xenBuild) xenPreflightOptions() xen.PreflightOptions {
	x := d.Spec.Xen
	return xen.PreflightOptions{Prefix: x.ToolPrefix(), OpamRoot: x.OpamRoot, OpamSwitch: x.OpamSwitch}
}

// xenKernel is the unikernel the guests boot.
func (d xenBuild) xenKernel() (string, error) {
	if d.Spec.Xen.Kernel != "" {
		return d.Spec.Xen.Kernel, nil
	}
	b, err := d.BuildSpec()
	if err != nil {
		return "", err
	}
	return xen.Artifact(b), nil
}

// xenSteps are the checks and the build. In plan mode the preflight
// findings are listed, not fatal: a plan must work without Xen.
func (d xenBuild) xenSteps(plan bool) []Step {
	return []Step{
		{Name: "xen", After: []string{"preflight"}, Observe: func(ctx context.Context) ([]Item, error) {
			return d.observeXen(ctx, plan)
		}},
		d.buildStep(plan),
	}
}

func (d xenBuild) observeXen(ctx context.Context, plan bool) ([]Item, error) {
	xr, err := d.xenRuntime()
	if err != nil {
		return nil, err
	}
	var items []Item
	for _, f := range xr.Preflight(ctx, d.xenPreflightOptions()) {
		if d.Spec.Xen.Kernel != "" && xen.IsBuildCheck(f.Check) {
			continue // no build here: the toolchain does not matter
		}
		obs := f.Status + ": " + f.Detail
		if f.Fix != "" && f.Status != xen.StatusOK {
			obs += " (fix: " + f.Fix + ")"
		}
		items = append(items, Item{Name: f.Check, Desired: "ok", Observed: obs, OK: plan || f.Status != xen.StatusFail})
	}
	return items, nil
}

func (d xenBuild) buildStep(plan bool) Step {
	if d.Spec.Xen.Kernel != "" {
		k := d.Spec.Xen.Kernel
		return Step{Name: "build", After: []string{"xen"}, Observe: func(context.Context) ([]Item, error) {
			obs := "present"
			if st, err := os.Stat(k); err != nil || !st.Mode().IsRegular() {
				obs = "missing"
			}
			return []Item{{Name: "kernel " + k, Desired: "present (xen.kernel: built elsewhere)", Observed: obs, OK: obs == "present" || plan}}, nil
		}}
	}
	return Step{
		Name: "build", After: []string{"xen"},
		Observe: func(ctx context.Context) ([]Item, error) {
			xr, err := d.xenRuntime()
			if err != nil {
				return nil, err
			}
			b, err := d.BuildSpec()
			if err != nil {
				return nil, err
			}
			fresh, fp, err := xr.Fresh(ctx, b)
			if err != nil {
				if plan {
					// Listed as a build to run: the plan shows its commands.
					return []Item{{Name: "unikernel " + xen.Artifact(b), Desired: "built from the current sources", Observed: "cannot tell: " + err.Error()}}, nil
				}
				return nil, err
			}
			obs := "built, fingerprint " + fp[:12]
			if !fresh {
				obs = "missing or stale"
			}
			return []Item{ok("unikernel "+xen.Artifact(b), "built, fingerprint "+fp[:12], obs)}, nil
		},
		Apply: func(ctx context.Context, _ []Item) error {
			xr, err := d.xenRuntime()
			if err != nil {
				return err
			}
			b, err := d.BuildSpec()
			if err != nil {
				return err
			}
			_, err = xr.Build(ctx, b, func(ev xen.BuildEvent) {
				if d.Progress == nil {
					return
				}
				line := ev.Line
				if ev.Status != "output" {
					line = strings.TrimSpace(ev.Status + " " + ev.Line)
				}
				d.Progress("build", fmt.Sprintf("[%s] %s: %s", xen.FormatElapsed(ev.Elapsed), ev.Step, line))
			})
			return err
		},
	}
}

// xenPlans renders what deploying each guest with xl would run and the
// full .xl files, running nothing.
func (d xenBuild) xenPlans(want []GuestRecord) ([]xen.Plan, error) {
	xr, err := d.xenRuntime()
	if err != nil {
		return nil, err
	}
	var build *xen.BuildSpec
	if d.Spec.Xen.Kernel == "" {
		b, err := d.BuildSpec()
		if err != nil {
			return nil, err
		}
		build = &b
	}
	var out []xen.Plan
	for i, g := range want {
		bs := build
		if i > 0 {
			bs = nil // one build serves every guest
		}
		p, err := xr.Plan(guestSteps{d.Dom0}.guestSpec(g), bs)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// xenMeaning is what a failed check of the xen runtime's preflight means
// for the lab, keyed by its check id.
var xenMeaning = map[string]string{
	"xen":         "dom0 is not running under the Xen hypervisor (or xl cannot talk to it): no guest can be created",
	"xen-version": "Mirage >= 3.9 guests boot PVH only, which older Xen cannot start",
	"hvm":         "Xen sees no VT-x/AMD-V (nested virtualisation is off in VirtualBox): PVH guests cannot start",
	"mirage":      "the unikernel cannot be configured and built in dom0",
	"opam":        "the OCaml toolchain that builds the unikernel cannot be installed or used",
	"ocaml":       "the unikernel's OCaml toolchain is missing or unsupported by ocaml-solo5",
}

// xenDoctor is the xen runtime's own dom0 checks for doctor: its
// preflight, each failure with what it means for the lab.
func (d xenBuild) xenDoctor(ctx context.Context) []doctor.Finding {
	var out []doctor.Finding
	for _, x := range d.xenPreflight(ctx) {
		f := doctor.Finding{Check: x.Check, Status: doctor.Status(x.Status), Detail: x.Detail, Fix: x.Fix}
		if f.Status != doctor.StatusOK {
			f.Meaning = xenMeaning[x.Check]
		}
		out = append(out, f)
	}
	return out
}

// xenPreflight asks xl and the toolchain, as deploy's xen step does.
func (d xenBuild) xenPreflight(ctx context.Context) []xen.Finding {
	opt := d.xenPreflightOptions()
	var fs []xen.Finding
	if xr, err := d.xenRuntime(); err == nil {
		fs = xr.Preflight(ctx, opt)
	} else {
		opt.XL = d.Spec.Xen.XL
		fs = xen.Preflight(ctx, xen.LocalRunner{}, opt)
	}
	var out []xen.Finding
	for _, f := range fs {
		if d.Spec.Xen.Kernel != "" && xen.IsBuildCheck(f.Check) {
			continue // the unikernel is built elsewhere: no toolchain needed here
		}
		out = append(out, f)
	}
	return out
}
