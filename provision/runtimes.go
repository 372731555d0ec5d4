package provision

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/vmctl"
)

// RuntimeAdapter is one guest runtime as the engine sees it. Each runtime
// registers itself under its spec name (guests.runtime); the engine, the
// spec's validation and deploy reach it only through here (issue 11: a
// third runtime is one adapter, not edits across the engine). The parts
// a runtime does not need stay nil.
type RuntimeAdapter struct {
	// About is how the spec's error lists it: "process (the simulated
	// lab's guests)".
	About string
	// Doctor, when set, is the runtime's own dom0 checks for doctor (xen:
	// the hypervisor and the unikernel toolchain), with their meanings.
	// They count when the lab uses this runtime; otherwise doctor reports
	// a failure as not needed.
	Doctor func(ctx context.Context, d *Dom0) []doctor.Finding
	// New makes the runtime for one opened lab.
	New func(d *Dom0) vmctl.Runtime
	// Kernel, when set, is what the guests boot instead of the kernel the
	// host sent (xen: the unikernel built in dom0, or xen.kernel).
	Kernel func(d *Dom0) (string, error)
	// Steps, when set, are the runtime's own deploy steps, after the
	// network and before any guest (xen: the toolchain check and the
	// build); the guests wait for all of them.
	Steps func(d *Dom0, plan bool) []Step
	// Plan, when set, is the runtime's part of a deploy plan (xen: each
	// guest's xl config and the build's commands), carried in the result
	// under PlanKey and shown by PrintPlan.
	Plan      func(d *Dom0, guests []GuestRecord) (any, error)
	PlanKey   string
	PrintPlan func(w io.Writer, plan json.RawMessage) error
	// Console, when set, is the interactive console command for a guest
	// (xen: xl console NAME), run on dom0 in a terminal; without it,
	// labctl console follows the guest's console.log.
	Console func(spec Spec, guest string) []string
	// Sim, when set, says where a guest of this runtime sits in the
	// simulated lab, for trace (process: a namespace of its own behind a
	// vif on dom0's bridge). Without it trace follows the path from the
	// host and dom0 only.
	Sim func(lab string, g GuestRecord) SimGuest
}

// SimGuest is one guest's place in the simulated lab.
type SimGuest struct {
	Vif   string // its link on dom0's bridge
	Netns string // the namespace to dial from, inside the guest
	// State is the runtime's view of the guest: "running", "stopped", …
	State func(ctx context.Context) (string, error)
}

// SimGuestOf is where g sits in the simulated lab, when its runtime says.
func SimGuestOf(lab string, g GuestRecord) (SimGuest, bool) {
	if f := runtimeAdapters[g.Runtime].Sim; f != nil {
		return f(lab, g), true
	}
	return SimGuest{}, false
}

var runtimeAdapters = map[string]RuntimeAdapter{}

// RegisterRuntime makes a runtime available to every lab under name. It
// is called from init functions: a name registered twice, or an adapter
// without New, is a programming error and panics.
func RegisterRuntime(name string, a RuntimeAdapter) {
	if _, dup := runtimeAdapters[name]; dup {
		panic(fmt.Sprintf("provision: runtime %q registered twice", name))
	}
	if a.New == nil {
		panic(fmt.Sprintf("provision: runtime %q has no New", name))
	}
	if a.Plan != nil && (a.PlanKey == "" || slices.Contains(tagKeys(reflect.TypeFor[Result](), "json"), a.PlanKey)) {
		panic(fmt.Sprintf("provision: runtime %q: plan key %q is empty or a result field's", name, a.PlanKey))
	}
	runtimeAdapters[name] = a
}

// RuntimeNames lists the registered runtimes, sorted.
func RuntimeNames() []string {
	names := make([]string, 0, len(runtimeAdapters))
	for n := range runtimeAdapters {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// runtimesExpected is what guests.runtime may be, for the spec's error.
func runtimesExpected() string {
	var about []string
	for _, n := range RuntimeNames() {
		about = append(about, runtimeAdapters[n].About)
	}
	return strings.Join(about, " or ")
}

// ConsoleCommand is the interactive console command of a guest of
// runtime, or nil when that runtime's console is its console.log.
func ConsoleCommand(spec Spec, runtime, guest string) []string {
	if c := runtimeAdapters[runtime].Console; c != nil {
		return c(spec, guest)
	}
	return nil
}

// RuntimesHelp is the --runtime flag's list: "process (…) or xen".
func RuntimesHelp() string { return runtimesExpected() }

// adapter is the lab's runtime's adapter (the zero adapter when the spec
// names none registered: Validate refuses that spec first).
func (d *Dom0) adapter() RuntimeAdapter { return runtimeAdapters[d.Spec.Guests.Runtime] }

// PrintRuntimePlans shows, for deploy --plan, the runtime's part of the
// plan as its adapter renders it (xen: every command and the full .xl).
func PrintRuntimePlans(w io.Writer, r DeployResult) error {
	for _, key := range slices.Sorted(maps.Keys(r.RuntimePlans)) {
		for _, a := range runtimeAdapters {
			if a.PlanKey == key && a.PrintPlan != nil {
				if err := a.PrintPlan(w, r.RuntimePlans[key]); err != nil {
					return err
				}
			}
		}
	}
	return nil
}
