package provision

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// fakeStep is a knob with a desired and an observed value; apply may be
// broken (sets the wrong value) or fail.
type fakeStep struct {
	name       string
	have, want string
	applyErr   error
	wrong      bool
	applies    int
}

func (f *fakeStep) step() Step {
	return Step{
		Name: f.name,
		Observe: func(context.Context) ([]Item, error) {
			return []Item{ok(f.name, f.want, f.have)}, nil
		},
		Apply: func(context.Context, []Item) error {
			f.applies++
			if f.applyErr != nil {
				return f.applyErr
			}
			if f.wrong {
				f.have = "wrong"
			} else {
				f.have = f.want
			}
			return nil
		},
	}
}

func TestRunModes(t *testing.T) {
	a := &fakeStep{name: "a", have: "x", want: "x"}
	b := &fakeStep{name: "b", have: "0", want: "1"}
	steps := []Step{a.step(), b.step()}

	res, err := Run(context.Background(), steps, ModePlan, nil)
	if err != nil || res[0].Status != StatusOK || res[1].Status != StatusPlanned || b.applies != 0 {
		t.Fatalf("plan: %+v %v applies=%d", res, err, b.applies)
	}
	var seen []string
	res, err = Run(context.Background(), steps, ModeApply, func(r StepResult) { seen = append(seen, r.Step+"="+r.Status) })
	if err != nil || res[1].Status != StatusChanged || b.applies != 1 {
		t.Fatalf("apply: %+v %v", res, err)
	}
	if strings.Join(seen, ",") != "a=ok,b=changed" {
		t.Fatalf("events %v", seen)
	}
	res, err = Run(context.Background(), steps, ModeApply, nil)
	if err != nil || res[1].Status != StatusOK || b.applies != 1 {
		t.Fatalf("second apply changed again: %+v", res)
	}
}

func TestRunStopsAtFailure(t *testing.T) {
	boom := &fakeStep{name: "boom", have: "0", want: "1", applyErr: errors.New("no permission")}
	wrong := &fakeStep{name: "wrong", have: "0", want: "1", wrong: true}
	after := &fakeStep{name: "after", have: "0", want: "1"}
	res, err := Run(context.Background(), []Step{boom.step(), after.step()}, ModeApply, nil)
	if err == nil || !strings.Contains(err.Error(), "step boom: no permission") || len(res) != 1 || after.applies != 0 {
		t.Fatalf("failure did not stop the run: %v %+v", err, res)
	}
	// An apply that does not achieve the desired state fails verification.
	res, err = Run(context.Background(), []Step{wrong.step()}, ModeApply, nil)
	if err == nil || res[0].Status != StatusFailed || !strings.Contains(res[0].Error, "still not as desired") {
		t.Fatalf("verification missed a wrong apply: %v %+v", err, res)
	}
	// A check (no Apply) with a bad item fails even in plan mode.
	check := Step{Name: "preflight", Observe: func(context.Context) ([]Item, error) {
		return []Item{ok("uplink eth1", "present", "missing")}, nil
	}}
	if _, err := Run(context.Background(), []Step{check}, ModePlan, nil); err == nil || !strings.Contains(err.Error(), "uplink eth1: want present, have missing") {
		t.Fatalf("failed check not reported: %v", err)
	}
}

func TestJournalFirstRecordWins(t *testing.T) {
	dir := t.TempDir()
	j, err := OpenJournal(dir, "lab")
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Record(Entry{Kind: KindSysctl, Key: "net.ipv4.ip_forward", Prior: "0"}); err != nil {
		t.Fatal(err)
	}
	// A later run sees 1 (labctl's own value): it must not replace the original.
	if err := j.Record(Entry{Kind: KindSysctl, Key: "net.ipv4.ip_forward", Prior: "1"}); err != nil {
		t.Fatal(err)
	}
	j.Record(Entry{Kind: KindLinkCreated, Link: "br0"})
	j2, err := OpenJournal(dir, "lab")
	if err != nil {
		t.Fatal(err)
	}
	if len(j2.Entries) != 2 || j2.Entries[0].Prior != "0" {
		t.Fatalf("journal on disk: %+v", j2.Entries)
	}
	if err := j2.Forget(Entry{Kind: KindLinkCreated, Link: "br0"}); err != nil {
		t.Fatal(err)
	}
	j3, _ := OpenJournal(dir, "lab")
	if len(j3.Entries) != 1 || j3.Has(Entry{Kind: KindLinkCreated, Link: "br0"}) {
		t.Fatalf("forget not persisted: %+v", j3.Entries)
	}
}

func TestJournalRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	j, _ := OpenJournal(dir, "lab")
	j.Record(Entry{Kind: KindDir, Path: "/x"})
	if err := os.WriteFile(dir+"/"+JournalFile, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenJournal(dir, "lab"); err == nil || !strings.Contains(err.Error(), "journal.json") {
		t.Fatalf("garbage journal accepted: %v", err)
	}
}

// Steps that do not depend on each other run concurrently; results still
// come in list order, and a failure stops only what builds on it.
func TestRunDependencies(t *testing.T) {
	release := make(chan struct{})
	slow := Step{Name: "slow", After: []string{}, Observe: func(context.Context) ([]Item, error) {
		<-release // finishes only after "fast" ran
		return []Item{ok("slow", "1", "1")}, nil
	}}
	fast := Step{Name: "fast", After: []string{}, Observe: func(context.Context) ([]Item, error) {
		close(release)
		return []Item{ok("fast", "1", "1")}, nil
	}}
	failing := &fakeStep{name: "failing", have: "0", want: "1", applyErr: errors.New("boom")}
	fs := failing.step()
	fs.After = []string{}
	dependent := &fakeStep{name: "dependent", have: "0", want: "1"}
	ds := dependent.step()
	ds.After = []string{"failing"}
	independent := &fakeStep{name: "independent", have: "0", want: "1"}
	is := independent.step()
	is.After = []string{"fast"}
	var order []string
	res, err := Run(context.Background(), []Step{slow, fast, fs, ds, is}, ModeApply, func(r StepResult) { order = append(order, r.Step) })
	if err == nil || !strings.Contains(err.Error(), "step failing: boom") {
		t.Fatalf("err = %v", err)
	}
	if strings.Join(order, ",") != "slow,fast,failing,independent" || len(res) != 4 {
		t.Fatalf("emitted %v", order)
	}
	if dependent.applies != 0 || independent.applies != 1 {
		t.Fatalf("dependent ran %d times, independent %d", dependent.applies, independent.applies)
	}
}

// Only provision and teardown may run from outside dom0 (Options.Enter):
// the other verbs reach guests from goroutines that would not be in dom0.
func TestServeLocalEnterOnlyProvision(t *testing.T) {
	entered := false
	o := Options{Enter: func(f func() error) error { entered = true; return f() }}
	for _, verb := range []string{"status", "deploy", "destroy", "doctor"} {
		r := ServeLocal(context.Background(), verb, AgentRequest{Spec: Default()}, o, func(StepResult) {}).Head()
		if r.OK || !strings.Contains(r.Error, "through the agent") || entered {
			t.Errorf("%s with Enter: ok=%v error %q entered=%v", verb, r.OK, r.Error, entered)
		}
	}
}

// Each verb's result is of NewResult's type for it, on both ends of the
// agent's stream and also when the verb could not run: the host decodes
// what the agent encodes into the type the verb is known by.
func TestResultTypePerVerb(t *testing.T) {
	bad := Default()
	bad.Lab = "no such lab!" // refused by Validate: nothing is opened
	types := map[string]Outcome{"status": &GuestsResult{}, "doctor": &GuestsResult{}, "deploy": &DeployResult{}}
	verbs := append(slices.Clone(AgentVerbs), "frobnicate")
	for _, verb := range verbs {
		want := reflect.TypeFor[*Result]()
		if o, ok := types[verb]; ok {
			want = reflect.TypeOf(o)
		}
		if got := reflect.TypeOf(NewResult(verb, "")); got != want {
			t.Errorf("NewResult(%s): %v, want %v", verb, got, want)
		}
		var stream bytes.Buffer
		o := ServeAgent(context.Background(), verb, AgentRequest{Spec: bad}, Options{}, &stream)
		if reflect.TypeOf(o) != want || o.Head().Command != verb || o.Head().OK || o.Head().Error == "" {
			t.Errorf("%s: served %T %+v, want a failed %v", verb, o, o.Head(), want)
		}
		var ev Event
		if err := json.Unmarshal(stream.Bytes(), &ev); err != nil || ev.Type != "result" {
			t.Fatalf("%s: stream %q: %v", verb, stream.String(), err)
		}
		back := NewResult(verb, "")
		if err := json.Unmarshal(ev.Result, back); err != nil || !reflect.DeepEqual(back, o) {
			t.Errorf("%s: read back %+v (%v), want %+v", verb, back, err, o)
		}
	}
	// Named as another verb's type, a result keeps its envelope.
	d := ResultAs[DeployResult](&Result{Command: "provision", Error: "boom"})
	if d.Command != "provision" || d.Error != "boom" || d.Guests != nil {
		t.Errorf("ResultAs: %+v", d)
	}
	if g := GuestsOf(&GuestsResult{Guests: []GuestStatus{{Name: "a"}}}); len(g) != 1 || GuestsOf(&Result{}) != nil {
		t.Errorf("GuestsOf: %v", g)
	}
}
