package provision

import (
	"github.com/labctl/labctl/vmctl"
	"github.com/labctl/labctl/vmctl/xen"
)

// The two runtimes labctl ships: the sim's process guests and the
// article's unikernels under Xen.
func init() {
	RegisterRuntime("process", RuntimeAdapter{
		About: "process (the simulated lab's guests)",
		New:   func(d *Dom0) vmctl.Runtime { return &vmctl.Process{Log: d.Log} },
	})
	RegisterRuntime("xen", RuntimeAdapter{
		About:    "xen",
		NeedsXen: true,
		New: func(d *Dom0) vmctl.Runtime {
			xr := xen.New(nil, nil, d.Log)
			xr.XL = d.Spec.Xen.XL
			return xr
		},
		Kernel: func(d *Dom0) (string, error) { return xenBuild{d}.xenKernel() },
		Steps:  func(d *Dom0, plan bool) []Step { return xenBuild{d}.xenSteps(plan) },
		Plan: func(d *Dom0, guests []GuestRecord, r *Result) error {
			plans, err := xenBuild{d}.xenPlans(guests)
			r.XenPlans = plans
			return err
		},
		Console: func(spec Spec, guest string) []string { return []string{spec.Xen.XL, "console", guest} },
	})
}
