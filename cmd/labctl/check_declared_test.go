package main

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/service/check"
)

// Issue 12: with replicas: 2 and auth-2 destroyed, check exited 0 with
// every probed case green. Every declared guest must be probed or failed.
func TestSplitDeclared(t *testing.T) {
	t.Parallel()
	var spec provision.Spec
	spec.Guests.Name = "auth"
	spec.Guests.Replicas = 3
	tests := []struct {
		name        string
		guests      []provision.GuestStatus
		wantRunning []string
		wantMissing map[string]string // guest -> got
	}{
		{
			name:        "all running",
			guests:      []provision.GuestStatus{{Name: "auth-1", State: "running"}, {Name: "auth-2", State: "running"}, {Name: "auth-3", State: "running"}},
			wantRunning: []string{"auth-1", "auth-2", "auth-3"},
			wantMissing: map[string]string{},
		},
		{
			name:        "one destroyed one stopped",
			guests:      []provision.GuestStatus{{Name: "auth-1", State: "running"}, {Name: "auth-2", State: "stopped"}},
			wantRunning: []string{"auth-1"},
			wantMissing: map[string]string{"auth-2": "stopped", "auth-3": "absent"},
		},
		{
			name:        "undeclared running guest still probed",
			guests:      []provision.GuestStatus{{Name: "auth-1", State: "running"}, {Name: "auth-2", State: "running"}, {Name: "auth-3", State: "running"}, {Name: "auth-4", State: "running"}},
			wantRunning: []string{"auth-1", "auth-2", "auth-3", "auth-4"},
			wantMissing: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			running, missing := splitDeclared(spec, tt.guests)
			var names []string
			for _, g := range running {
				names = append(names, g.Name)
			}
			if !reflect.DeepEqual(names, tt.wantRunning) {
				t.Errorf("running = %v, want %v", names, tt.wantRunning)
			}
			got := map[string]string{}
			for _, r := range missing {
				if r.Pass || r.Failed != 1 || len(r.Results) != 1 || r.Results[0].Pass {
					t.Errorf("%s: report %+v, want one failed case", r.Guest, r)
				}
				if len(r.Failures()) != 1 {
					t.Errorf("%s: %d failures, want 1 (printCheck gates on Failures)", r.Guest, len(r.Failures()))
				}
				got[r.Guest] = r.Results[0].Got
			}
			if !reflect.DeepEqual(got, tt.wantMissing) {
				t.Errorf("missing = %v, want %v", got, tt.wantMissing)
			}
		})
	}
}

// A declared guest that is not running fails check (exit 1) and its case
// is a <failure> in JUnit.
func TestCheckFailsOnMissingGuest(t *testing.T) {
	t.Parallel()
	var spec provision.Spec
	spec.Guests.Name = "auth"
	spec.Guests.Replicas = 2
	_, missing := splitDeclared(spec, []provision.GuestStatus{{Name: "auth-1", State: "running"}})
	a := &app{}
	var out bytes.Buffer
	err := checker{a}.printCheck(&out, "lab", missing)
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != exitFail {
		t.Fatalf("printCheck = %v, want exit %d", err, exitFail)
	}
	if !strings.Contains(err.Error(), "auth-2") {
		t.Errorf("error %q does not name auth-2", err)
	}
	var junit bytes.Buffer
	if err := check.WriteJUnit(&junit, missing); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(junit.String(), `failures="1"`) || !strings.Contains(junit.String(), "<failure") {
		t.Errorf("JUnit has no failure for auth-2:\n%s", junit.String())
	}
}
