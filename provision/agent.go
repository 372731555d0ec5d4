package provision

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/labctl/labctl/vmctl"
)

// AgentRequest is what the host sends the agent on stdin: the effective
// spec (the host's -f file, already validated there) and the options.
type AgentRequest struct {
	Schema    int    `json:"schema"`
	Spec      Spec   `json:"spec"`
	StateRoot string `json:"state_root,omitempty"`
	Plan      bool   `json:"plan,omitempty"`
	NoResolv  bool   `json:"no_resolv,omitempty"`
	// Deploy: the users image on dom0 and its digest; the guest kernel.
	Deploy DeployInput `json:"deploy,omitzero"`
	// Destroy: the guest to remove.
	Guest string `json:"guest,omitempty"`
	// Confirm: provision arms commit-confirm with it (remote targets);
	// the confirm verb gives the confirmation (confirm.go).
	Confirm *ConfirmRequest `json:"confirm,omitempty"`
	// Log, when set (labctl -v), receives the agent's own log lines as
	// they come, and the agent runs with --verbose: without it they are
	// kept and shown only when the agent fails. Never sent.
	Log io.Writer `json:"-"`
}

// ReadOnlyVerb says whether verb (with plan) changes nothing on dom0:
// it then opens the lab read-only (Options.ReadOnly).
func ReadOnlyVerb(verb string, plan bool) bool {
	switch verb {
	case "status", "doctor":
		return true
	case "provision", "deploy":
		return plan
	}
	return false
}

// Verbs the agent serves.
var AgentVerbs = []string{"provision", "status", "teardown", "deploy", "destroy", "doctor", "confirm"}

// ServeAgent runs one verb in this process's namespace and streams
// JSON-lines events to w: one {"type":"step"} per step as it ends, then
// one {"type":"result"}. The returned result is the same as the last
// line, of the verb's own type (NewResult).
func ServeAgent(ctx context.Context, verb string, req AgentRequest, o Options, w io.Writer) Outcome {
	enc := json.NewEncoder(w)
	r := serve(ctx, verb, req, o, w, func(s StepResult) {
		enc.Encode(Event{Schema: SchemaVersion, Type: "step", Step: &s})
	})
	b, err := json.Marshal(r)
	if err != nil {
		// Nothing in a result fails to encode; should it, the caller
		// still gets a result, and one that says why.
		b, _ = json.Marshal(failed(verb, req.Spec.Lab, fmt.Errorf("encoding the %s result: %w", verb, err)))
	}
	enc.Encode(Event{Schema: SchemaVersion, Type: "result", Result: b})
	return r
}

// ServeLocal runs one verb in this process, without an agent: dom0 is
// this machine, or (with o.Enter) a namespace the steps enter. onStep
// sees each step as it ends and each progress line as it comes, one at a
// time.
func ServeLocal(ctx context.Context, verb string, req AgentRequest, o Options, onStep func(StepResult)) Outcome {
	if o.Enter != nil && verb != "provision" && verb != "teardown" {
		// See Options.Enter: the other verbs reach guests.
		return failed(verb, req.Spec.Lab, fmt.Errorf("%s runs in dom0's namespace only, through the agent", verb))
	}
	return serve(ctx, verb, req, o, io.Discard, onStep)
}

// serve runs a verb; doctor writes its findings to w. The result is of
// the verb's own type, also when the verb could not run (NewResult).
func serve(ctx context.Context, verb string, req AgentRequest, o Options, w io.Writer, onStep func(StepResult)) Outcome {
	var mu sync.Mutex // steps end and builds print from several goroutines
	emit := func(s StepResult) {
		mu.Lock()
		defer mu.Unlock()
		onStep(s)
	}
	if !slices.Contains(AgentVerbs, verb) {
		return failed(verb, req.Spec.Lab, fmt.Errorf("unknown agent verb %q (expected one of %s)", verb, strings.Join(AgentVerbs, ", ")))
	}
	if err := req.Spec.Validate(); err != nil {
		return failed(verb, req.Spec.Lab, err)
	}
	o.Spec, o.StateRoot, o.NoResolv = req.Spec, req.StateRoot, req.NoResolv
	o.ReadOnly = ReadOnlyVerb(verb, req.Plan)
	if verb == "confirm" {
		// No lock: the watchdog may hold it while it rolls back.
		if req.Confirm == nil {
			return failed(verb, req.Spec.Lab, errors.New("confirm: no token in the request"))
		}
		if err := Confirm(req.StateRoot, req.Spec.Lab, req.Confirm.Token); err != nil {
			return failed(verb, req.Spec.Lab, err)
		}
		r := NewResult(verb, req.Spec.Lab)
		r.Head().OK = true
		return r
	}
	d, done, err := Open(o)
	if err != nil {
		return failed(verb, req.Spec.Lab, err)
	}
	defer done()
	// Long work (the unikernel build) streams its lines as "progress"
	// step events while it runs.
	d.Progress = func(step, line string) { emit(StepResult{Step: step, Status: StatusProgress, Detail: line}) }
	switch verb {
	case "provision":
		if req.Confirm != nil && !req.Plan {
			if _, err := armConfirm(d.StateDir, req, d.Log); err != nil {
				return ptr(d.result("provision", nil, err))
			}
		}
		return ptr(d.Provision(ctx, req.Plan, emit))
	case "status":
		return ptr(d.Status(ctx, emit))
	case "teardown":
		return ptr(d.TeardownResult(ctx, emit))
	case "deploy":
		in := req.Deploy
		if in.Kernel == "" {
			k, err := GuestBinary()
			if err != nil {
				return &DeployResult{Result: d.result("deploy", nil, err)}
			}
			in.Kernel = k
		}
		return ptr(d.Deploy(ctx, in, req.Plan, emit))
	case "destroy":
		return ptr(d.result("destroy", nil, d.DestroyGuest(ctx, req.Guest)))
	default: // "doctor"
		// Sequential: nothing else writes to w meanwhile.
		return ptr(d.Doctor(ctx, w))
	}
}

func ptr[T any](v T) *T { return &v }

// CallAgent runs `<exe> agent <verb>` on t, feeds it req, and calls
// onStep for each step event as it arrives. It returns the agent's
// result, of the verb's own type (NewResult); an error only when no
// result arrived (the agent could not run or died).
func CallAgent(ctx context.Context, t vmctl.Transport, exe string, verb string, req AgentRequest, onStep func(StepResult)) (Outcome, error) {
	req.Schema = SchemaVersion
	in, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	var stderr bytes.Buffer
	done := make(chan error, 1)
	go func() {
		argv := []string{exe, "agent", verb}
		var errw io.Writer = &stderr
		if req.Log != nil {
			argv = append(argv, "--verbose")
			errw = io.MultiWriter(&stderr, req.Log)
		}
		err := t.Run(ctx, argv, bytes.NewReader(in), pw, errw)
		pw.CloseWithError(io.EOF)
		done <- err
	}()
	var res Outcome
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64*1024), 8*1024*1024)
	for sc.Scan() {
		var ev Event
		if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
			continue // not an event: a stray line from a wrapper (sudo, motd)
		}
		if ev.Schema != SchemaVersion {
			pr.CloseWithError(errors.New("schema mismatch"))
			<-done
			return nil, fmt.Errorf("agent on %s speaks schema %d, this labctl %d: update labctl on dom0", t, ev.Schema, SchemaVersion)
		}
		switch {
		case ev.Type == "step" && ev.Step != nil && onStep != nil:
			onStep(*ev.Step)
		case ev.Type == "result" && ev.Result != nil:
			r := NewResult(verb, req.Spec.Lab)
			if err := json.Unmarshal(ev.Result, r); err == nil {
				res = r
			}
		}
	}
	runErr := <-done
	if res == nil {
		msg := strings.TrimSpace(stderr.String())
		if runErr == nil {
			runErr = errors.New("no result")
		}
		return nil, fmt.Errorf("agent %s on %s: %w%s", verb, t, runErr, suffix(msg))
	}
	return res, nil
}

// CallAgentAs is CallAgent for a verb whose result type the caller
// names: R is NewResult's type for verb (Result, GuestsResult or
// DeployResult).
func CallAgentAs[R any, PR interface {
	*R
	Outcome
}](ctx context.Context, t vmctl.Transport, exe string, verb string, req AgentRequest, onStep func(StepResult)) (*R, error) {
	o, err := CallAgent(ctx, t, exe, verb, req, onStep)
	if err != nil {
		return nil, err
	}
	return ResultAs[R, PR](o), nil
}

// ResultAs is o as the result type R. o is of that type when R is
// NewResult's type for o's verb; otherwise (a caller's mistake) the
// envelope is kept and the rest is left empty, rather than a panic.
func ResultAs[R any, PR interface {
	*R
	Outcome
}](o Outcome) *R {
	if r, ok := o.(PR); ok {
		return r
	}
	var r R
	*PR(&r).Head() = *o.Head()
	return &r
}

func suffix(msg string) string {
	if msg == "" {
		return ""
	}
	return "\n" + msg
}

// GuestBinary is the process runtime's guest: labctl-guest next to the
// running labctl (scripts/up.sh and the tests build both), a small binary
// whose start-up is a fraction of labctl's. Without it (an agent uploaded
// alone to a remote dom0, a test binary) labctl itself is the guest
// (`labctl guest run --config`), slower to start but the same contract.
func GuestBinary() (string, error) {
	exe, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("locating the guest binary: %w", err)
	}
	g := filepath.Join(filepath.Dir(exe), "labctl-guest")
	if st, err := os.Stat(g); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return g, nil
	}
	return exe, nil
}
