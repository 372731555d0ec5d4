package provision

import (
	"context"

	"github.com/labctl/labctl/vmctl"
	"github.com/labctl/labctl/vmctl/xen"
)

// The two runtimes labctl ships: the sim's process guests and the
// article's unikernels under Xen.
func init() {
	RegisterRuntime("process", RuntimeAdapter{
		About: "process (the simulated lab's guests)",
		New:   func(d *Dom0) vmctl.Runtime { return &vmctl.Process{Log: d.Log} },
		Sim:   processSimGuest,
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

// processSimGuest: a process guest runs in a namespace of its own, its
// vif on dom0's bridge, its state the process runtime's.
func processSimGuest(lab string, g GuestRecord) SimGuest {
	gs := vmctl.GuestSpec{Lab: lab, Name: g.Name, Index: g.Index, StateDir: g.StateDir}
	return SimGuest{
		Vif:   vmctl.VifName(g.Index),
		Netns: vmctl.GuestNetns(lab, g.Index),
		State: func(ctx context.Context) (string, error) {
			st, err := (&vmctl.Process{}).State(ctx, gs)
			return st.State, err
		},
	}
}
