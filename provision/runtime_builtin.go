package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/labctl/labctl/doctor"
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
		About:  "xen",
		Doctor: func(ctx context.Context, d *Dom0) []doctor.Finding { return xenBuild{d}.xenDoctor(ctx) },
		New: func(d *Dom0) vmctl.Runtime {
			xr := xen.New(nil, nil, d.Log)
			xr.XL = d.Spec.Xen.XL
			return xr
		},
		Kernel:    func(d *Dom0) (string, error) { return xenBuild{d}.xenKernel() },
		Steps:     func(d *Dom0, plan bool) []Step { return xenBuild{d}.xenSteps(plan) },
		Plan:      func(d *Dom0, guests []GuestRecord) (any, error) { return xenBuild{d}.xenPlans(guests) },
		PlanKey:   "xen_plans",
		PrintPlan: printXenPlans,
		Console:   func(spec Spec, guest string) []string { return []string{spec.Xen.XL, "console", guest} },
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

// printXenPlans shows, for deploy --runtime xen --plan, every command a
// deploy would run and the full .xl it would write.
func printXenPlans(w io.Writer, raw json.RawMessage) error {
	var plans []xen.Plan
	if err := json.Unmarshal(raw, &plans); err != nil {
		return fmt.Errorf("xen plans: %w", err)
	}
	for _, p := range plans {
		fmt.Fprintln(w, "\nwould run:")
		for _, c := range p.Commands {
			fmt.Fprintf(w, "  %s\n      # %s\n", strings.Join(c.Argv, " "), c.Why)
		}
		fmt.Fprintf(w, "\nwould write %s:\n%s", p.XLPath, p.XL)
	}
	return nil
}
