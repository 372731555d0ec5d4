package provision

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/labctl/labctl/vmctl"
)

func TestRuntimeRegistry(t *testing.T) {
	if got := strings.Join(RuntimeNames(), ","); got != "process,xen" {
		t.Errorf("RuntimeNames() = %s, want process,xen (the ones labctl ships)", got)
	}
	newRT := func(*Dom0) vmctl.Runtime { return nil }
	plan := func(*Dom0, []GuestRecord) (any, error) { return nil, nil }
	for _, tc := range []struct {
		name string
		a    RuntimeAdapter
	}{
		{"no-new", RuntimeAdapter{}},
		{"xen", RuntimeAdapter{New: newRT}}, // registered twice
		{"plan-no-key", RuntimeAdapter{New: newRT, Plan: plan}},
		{"plan-field-key", RuntimeAdapter{New: newRT, Plan: plan, PlanKey: "lab"}},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("registering %q did not panic", tc.name)
				}
			}()
			RegisterRuntime(tc.name, tc.a)
		}()
	}
	s := Default()
	s.Xen.XL = "/usr/sbin/xl"
	if got := ConsoleCommand(s, "xen", "auth-1"); strings.Join(got, " ") != "/usr/sbin/xl console auth-1" {
		t.Errorf("xen console = %q, want xl console auth-1", got)
	}
	if got := ConsoleCommand(s, "process", "auth-1"); got != nil {
		t.Errorf("process console = %q, want none (its console.log is followed)", got)
	}
	s.Guests.Runtime = "qemu"
	err := s.Validate()
	if err == nil || !strings.Contains(err.Error(), "guests.runtime") || !strings.Contains(err.Error(), "process (the simulated lab's guests) or xen") {
		t.Errorf("an unregistered runtime: %v, want guests.runtime named with the registered ones", err)
	}
}

// A runtime's plan travels in the result document under its adapter's
// key, as a top-level field, and comes back from JSON (dom0's agent to
// the host) intact; without one the document is the plain fields.
func TestResultRuntimePlansJSON(t *testing.T) {
	plain := DeployResult{Result: Result{Schema: SchemaVersion, Command: "deploy", Lab: "l", OK: true, Plan: true}}
	b, err := json.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(deployFields(plain))
	if !bytes.Equal(b, want) {
		t.Fatalf("without plans:\n%s\nwant\n%s", b, want)
	}
	withPlan := plain
	withPlan.RuntimePlans = map[string]json.RawMessage{"xen_plans": json.RawMessage(`[{"xl_path":"/s/auth-1.xl"}]`)}
	b, err = json.Marshal(withPlan)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if string(top["xen_plans"]) != `[{"xl_path":"/s/auth-1.xl"}]` || string(top["lab"]) != `"l"` {
		t.Fatalf("document %s", b)
	}
	var back DeployResult
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, withPlan) {
		t.Fatalf("read back %+v, want %+v", back, withPlan)
	}
	// Through an encoder that keeps < > & (as labctl's documents do),
	// they stay as they are inside the result too.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	withPlan.Error = "a < b & c > d"
	if err := enc.Encode(withPlan); err != nil || !strings.Contains(buf.String(), `"a < b & c > d"`) {
		t.Fatalf("escaped: %s %v", buf.String(), err)
	}
	// A key no registered runtime names is not taken for a plan.
	if err := json.Unmarshal([]byte(`{"lab":"l","other_plans":[1]}`), &back); err != nil || back.RuntimePlans != nil {
		t.Fatalf("unknown key: %+v %v", back.RuntimePlans, err)
	}
}
