package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/vmctl"
)

// A third runtime, registered from this file alone (issue 11): the engine,
// the spec and the agent know it by its registration only. It runs the
// sim's guest (it delegates to the process runtime, as a real adapter
// would to its hypervisor) and writes what the engine asked of it to
// testrt.log in the lab's state directory, so the test can tell it was
// this runtime that ran. The CLI and its agent are this test binary
// (TestMain), so both see the registration.
func init() {
	provision.RegisterRuntime("testrt", provision.RuntimeAdapter{
		About: "testrt (a test's)",
		New:   func(d *provision.Dom0) vmctl.Runtime { return testRuntime{&vmctl.Process{Log: d.Log}} },
	})
}

type testRuntime struct{ p *vmctl.Process }

func (testRuntime) Name() string { return "testrt" }

func (r testRuntime) note(g vmctl.GuestSpec, verb string) {
	lab := filepath.Dir(filepath.Dir(g.StateDir)) // <lab>/guests/<name>
	f, err := os.OpenFile(filepath.Join(lab, "testrt.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err == nil {
		fmt.Fprintf(f, "%s %s\n", verb, g.Name)
		f.Close()
	}
}

func (r testRuntime) Start(ctx context.Context, g vmctl.GuestSpec) error {
	r.note(g, "start")
	return r.p.Start(ctx, g)
}

func (r testRuntime) Stop(ctx context.Context, g vmctl.GuestSpec) error {
	r.note(g, "stop")
	return r.p.Stop(ctx, g)
}

func (r testRuntime) State(ctx context.Context, g vmctl.GuestSpec) (vmctl.GuestState, error) {
	r.note(g, "state")
	return r.p.State(ctx, g)
}

func TestRegisteredRuntimeDeployStatusDestroy(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	spec := fastSpec(t, "guests:\n  runtime: testrt\n  replicas: 2\n")
	r := deployJSON(t, l, "-f", spec)
	if len(r.Guests) != 2 {
		t.Fatalf("deploy: %d guests, want 2: %+v", len(r.Guests), r.Guests)
	}
	for _, g := range r.Guests {
		if !g.Healthy || g.HostProbe != "ok" {
			t.Fatalf("guest %s not healthy: %+v", g.Name, g)
		}
		b, err := os.ReadFile(filepath.Join(l.StateDir(), "guests", g.Name, "guest.json"))
		if err != nil {
			t.Fatal(err)
		}
		var rec provision.GuestRecord
		if err := json.Unmarshal(b, &rec); err != nil || rec.Runtime != "testrt" {
			t.Fatalf("%s's record: runtime %q (%v), want testrt", g.Name, rec.Runtime, err)
		}
	}
	if st, code := statusJSON(t, l, "-f", spec); code != 0 || len(st.Guests) != 2 {
		t.Fatalf("status: exit %d, %d guests: %s", code, len(st.Guests), st.Error)
	}
	l.MustRun("destroy", "auth-2", "--target", "sim", "-f", spec)
	// The spec still wants two: status sees auth-1 up and auth-2 gone.
	st, _ := statusJSON(t, l, "-f", spec)
	for _, g := range st.Guests {
		if (g.Name == "auth-1") != g.Healthy {
			t.Fatalf("status after destroying auth-2: %+v", st.Guests)
		}
	}
	log, err := os.ReadFile(filepath.Join(l.StateDir(), "testrt.log"))
	if err != nil {
		t.Fatalf("the registered runtime was never called: %v", err)
	}
	lines := strings.Split(strings.TrimSpace(string(log)), "\n")
	for _, want := range []string{"start auth-1", "start auth-2", "state auth-1", "stop auth-2"} {
		if !slices.Contains(lines, want) {
			t.Errorf("testrt.log lacks %q:\n%s", want, log)
		}
	}
	l.MustRun("teardown", "--target", "sim", "-f", spec)
}
