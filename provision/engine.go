package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// SchemaVersion is the version of every JSON document labctl prints
// (provision, status, teardown results and agent events). See docs/json.md.
// 2: check's keys became name/ok/elapsed_ms/cases, step names lost their
// space (guest:auth-1, undo:KIND).
const SchemaVersion = 2

// Status of a step.
const (
	StatusPlanned = "planned" // --plan/status: it would change something
	StatusOK      = "ok"      // already as desired
	StatusChanged = "changed" // changed, and verified
	StatusFailed  = "failed"
	// StatusProgress marks a line of output from a step still running
	// (agent stream only; never in a result).
	StatusProgress = "progress"
)

// Item is one thing a step checks: what is desired against what is there.
type Item struct {
	Name     string `json:"name"`
	Desired  string `json:"desired"`
	Observed string `json:"observed"`
	OK       bool   `json:"ok"`
}

func (i Item) String() string {
	if i.OK {
		return fmt.Sprintf("%s: %s", i.Name, i.Observed)
	}
	return fmt.Sprintf("%s: want %s, have %s", i.Name, i.Desired, i.Observed)
}

// Step is one named unit of convergence.
type Step struct {
	Name string
	// Observe reads the system and reports each item. It changes nothing.
	Observe func(ctx context.Context) ([]Item, error)
	// Apply brings the items that are not OK to their desired value. Nil
	// for checks (preflight): their items must already be OK.
	Apply func(ctx context.Context, items []Item) error
	// After names the earlier steps this one builds on. A step runs once
	// those succeeded, concurrently with steps it does not depend on
	// (NAT rules need no bridge; dnsmasq needs the bridge's address).
	// Nil means every earlier step.
	After []string
	// Verify, when set, replaces the fresh Observe after Apply: for a
	// step whose Apply already proved part of the result under its own
	// retries and deadline (a guest's lease and health), so the proof is
	// not thrown away for one more single-shot look.
	Verify func(ctx context.Context) ([]Item, error)
}

// GuestStep is the step that deploys (and status observes) one guest:
// "guest:auth-1". Step names are FAMILY or FAMILY:SUBJECT, never with a
// space, so a consumer splits on the first colon (docs/json.md).
func GuestStep(guest string) string { return "guest:" + guest }

// StepResult is what a step did.
type StepResult struct {
	Step      string  `json:"step"`
	Status    string  `json:"status"`
	Detail    string  `json:"detail,omitempty"`
	Items     []Item  `json:"items"`
	Error     string  `json:"error,omitempty"`
	ElapsedMS float64 `json:"elapsed_ms"`
}

// Event is one line of the agent's JSON-lines stream. Result holds the
// verb's result as encoded (Result, GuestsResult or DeployResult: see
// NewResult); the caller decodes it into its verb's type.
type Event struct {
	Schema int             `json:"schema"`
	Type   string          `json:"type"` // "step" or "result"
	Step   *StepResult     `json:"step,omitempty"`
	Result json.RawMessage `json:"result,omitempty"`
}

// Result is what every verb reports, and all that provision, teardown,
// destroy and confirm report: the envelope of each result document
// (docs/json.md#result). Verbs that report more embed it: GuestsResult
// (status, doctor) and DeployResult (deploy).
type Result struct {
	Schema  int          `json:"schema"`
	Command string       `json:"command"`
	Lab     string       `json:"lab"`
	Target  string       `json:"target,omitempty"`
	Plan    bool         `json:"plan,omitempty"`
	OK      bool         `json:"ok"`
	Changed bool         `json:"changed"`
	Drift   []string     `json:"drift,omitempty"`
	Steps   []StepResult `json:"steps"`
	Error   string       `json:"error,omitempty"`
	// Sim: the simulated lab's namespaces, set by the host for
	// --target sim whatever the verb (where the lab is, not what the verb
	// found; the agent never sets it).
	Sim *SimInfo `json:"sim,omitempty"`
}

// Outcome is any verb's result, through its envelope.
type Outcome interface {
	Head() *Result
}

// Head is the envelope itself; the verbs' own result types embed it.
func (r *Result) Head() *Result { return r }

// GuestsResult is what status and doctor report: the envelope and each
// deployed guest as the verb observed it.
type GuestsResult struct {
	Result
	Guests []GuestStatus `json:"guests,omitempty"`
}

// DeployResult is what deploy reports: the envelope, the guests it
// deployed and, with --plan, the runtime's own plan.
type DeployResult struct {
	Result
	Guests []GuestStatus `json:"guests,omitempty"`
	// RuntimePlans: deploy --plan's part from the guests' runtime, under
	// the key its adapter names (RuntimeAdapter.PlanKey; the xen
	// runtime's "xen_plans": per guest, the commands it would run and the
	// .xl it would write). The engine does not know its shape; the
	// document carries it at the top level (see MarshalJSON).
	RuntimePlans map[string]json.RawMessage `json:"-"`
}

// NewResult is the empty result of verb for lab, of the verb's own type:
// *GuestsResult for status and doctor, *DeployResult for deploy, *Result
// for the rest. Both ends of the agent's stream build a verb's result
// here, so they agree on its type.
func NewResult(verb, lab string) Outcome {
	h := Result{Schema: SchemaVersion, Command: verb, Lab: lab, Steps: []StepResult{}}
	switch verb {
	case "status", "doctor":
		return &GuestsResult{Result: h}
	case "deploy":
		return &DeployResult{Result: h}
	}
	return &h
}

// failed is verb's result when it could not run: err says why.
func failed(verb, lab string, err error) Outcome {
	o := NewResult(verb, lab)
	o.Head().Error = err.Error()
	return o
}

// GuestsOf lists the guests a result reports (none for the verbs that
// report no guests).
func GuestsOf(o Outcome) []GuestStatus {
	switch r := o.(type) {
	case *GuestsResult:
		return r.Guests
	case *DeployResult:
		return r.Guests
	}
	return nil
}

// deployFields is DeployResult without its methods, for encoding/json.
type deployFields DeployResult

// MarshalJSON writes the result's fields, then each runtime plan under
// its own key, as if it were a field.
func (r DeployResult) MarshalJSON() ([]byte, error) {
	// Written without HTML escapes: the caller's encoder escapes them
	// when it is asked to (encoding/json compacts a Marshaler's output
	// with its own escapeHTML), and labctl's documents say < > & as is.
	var fields bytes.Buffer
	enc := json.NewEncoder(&fields)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(deployFields(r)); err != nil {
		return nil, err
	}
	b := bytes.TrimSuffix(fields.Bytes(), []byte("\n"))
	if len(r.RuntimePlans) == 0 {
		return b, nil
	}
	keys := slices.Sorted(maps.Keys(r.RuntimePlans))
	var out bytes.Buffer
	out.Write(b[:len(b)-1]) // without the closing brace
	for _, k := range keys {
		kb, _ := json.Marshal(k)
		out.WriteByte(',')
		out.Write(kb)
		out.WriteByte(':')
		out.Write(r.RuntimePlans[k])
	}
	out.WriteByte('}')
	return out.Bytes(), nil
}

// UnmarshalJSON reads the fields, and the plans of registered runtimes
// under their keys (a result coming back from dom0's agent).
func (r *DeployResult) UnmarshalJSON(b []byte) error {
	if err := json.Unmarshal(b, (*deployFields)(r)); err != nil {
		return err
	}
	var all map[string]json.RawMessage
	if err := json.Unmarshal(b, &all); err != nil {
		return err
	}
	r.RuntimePlans = nil
	for _, a := range runtimeAdapters {
		if v, ok := all[a.PlanKey]; ok && a.PlanKey != "" {
			if r.RuntimePlans == nil {
				r.RuntimePlans = map[string]json.RawMessage{}
			}
			r.RuntimePlans[a.PlanKey] = v
		}
	}
	return nil
}

// GuestStatus is one guest in a result.
type GuestStatus struct {
	Name    string `json:"name"`
	MAC     string `json:"mac"`
	IP      string `json:"ip"`
	URL     string `json:"url"`
	State   string `json:"state"`   // running, stopped
	Healthy bool   `json:"healthy"` // answered the probe from dom0
	// HostProbe: the probe from the host side ("ok" or why not); set by
	// the host after deploy and status.
	HostProbe string `json:"host_probe,omitempty"`
	// Port: the bridge port dom0 learned the guest's MAC on (vif1.0);
	// status only, empty when not learned.
	Port string `json:"port,omitempty"`
}

// SimInfo names the simulated lab's namespaces.
type SimInfo struct {
	HostNetns string `json:"host_netns"`
	Dom0Netns string `json:"dom0_netns"`
	WANNetns  string `json:"wan_netns"`
}

// Mode selects what Run does.
type Mode int

const (
	ModeApply Mode = iota // observe, diff, apply, verify
	ModePlan              // observe and diff only
)

// ErrDrift is returned by status when something differs from the spec.
var ErrDrift = errors.New("drift")

// ErrNotProvisioned is status's error when the lab differs from its spec
// and labctl has nothing applied there (never provisioned, or torn
// down): "drifted (12 items)" would send the user looking for a cause.
var ErrNotProvisioned = errors.New("not provisioned")

// Run executes steps: each once the steps it builds on succeeded, steps
// that do not depend on each other concurrently. Results come back, and
// emit (may be nil) sees them, in list order. A failed step stops every
// step that builds on it; the run reports the first failure in list order.
func Run(ctx context.Context, steps []Step, mode Mode, emit func(StepResult)) ([]StepResult, error) {
	n := len(steps)
	index := map[string]int{}
	for i, s := range steps {
		index[s.Name] = i
	}
	done := make([]chan struct{}, n)
	results := make([]*StepResult, n)
	for i := range done {
		done[i] = make(chan struct{})
	}
	delay := TestStepDelay
	for i, s := range steps {
		deps := make([]int, 0, i)
		if s.After == nil {
			for j := range i {
				deps = append(deps, j)
			}
		} else {
			for _, name := range s.After {
				j, ok := index[name]
				if !ok || j >= i {
					panic(fmt.Sprintf("step %s: After %q is not an earlier step", s.Name, name))
				}
				deps = append(deps, j)
			}
		}
		go func() {
			defer close(done[i])
			for _, j := range deps {
				<-done[j]
				if results[j] == nil || results[j].Status == StatusFailed {
					return // not run: what it builds on failed
				}
			}
			r := runStep(ctx, s, mode)
			if delay > 0 {
				time.Sleep(delay)
			}
			results[i] = &r
		}()
	}
	var out []StepResult
	var firstErr error
	for i := range steps {
		<-done[i]
		if results[i] == nil {
			continue
		}
		r := *results[i]
		out = append(out, r)
		if emit != nil {
			emit(r)
		}
		if r.Status == StatusFailed && firstErr == nil {
			firstErr = fmt.Errorf("step %s: %s", r.Step, r.Error)
		}
	}
	return out, firstErr
}

// TestStepDelay is a test-only hook: a pause after each step, so the crash
// test can kill provision between steps deterministically. Only
// cmd/labctl's TestMain sets it (from LABCTL_TEST_STEP_DELAY, in the test
// binary run as the CLI); shipped labctl never reads the environment for it.
var TestStepDelay time.Duration

func runStep(ctx context.Context, s Step, mode Mode) (r StepResult) {
	start := time.Now()
	r.Step = s.Name
	defer func() { r.ElapsedMS = float64(time.Since(start).Microseconds()) / 1000 }()
	fail := func(err error) StepResult {
		r.Status = StatusFailed
		r.Error = err.Error()
		return r
	}
	items, err := s.Observe(ctx)
	r.Items = items
	if err != nil {
		return fail(err)
	}
	pending := notOK(items)
	if len(pending) == 0 {
		r.Status = StatusOK
		return r
	}
	r.Detail = describe(pending)
	if s.Apply == nil {
		return fail(errors.New(r.Detail))
	}
	if mode == ModePlan {
		r.Status = StatusPlanned
		return r
	}
	if err := s.Apply(ctx, items); err != nil {
		return fail(err)
	}
	// Verify: the step is done only when a fresh observation agrees.
	verify := s.Observe
	if s.Verify != nil {
		verify = s.Verify
	}
	after, err := verify(ctx)
	r.Items = after
	if err != nil {
		return fail(fmt.Errorf("verifying: %w", err))
	}
	if left := notOK(after); len(left) > 0 {
		return fail(fmt.Errorf("still not as desired after applying: %s", describe(left)))
	}
	r.Status = StatusChanged
	return r
}

func notOK(items []Item) []Item {
	var out []Item
	for _, i := range items {
		if !i.OK {
			out = append(out, i)
		}
	}
	return out
}

func describe(items []Item) string {
	parts := make([]string, len(items))
	for i, it := range items {
		parts[i] = it.String()
	}
	return strings.Join(parts, "; ")
}
