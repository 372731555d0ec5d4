package provision

import (
	"reflect"
	"testing"
)

// Issue 12: with replicas: 2 and auth-2 destroyed, check exited 0 with
// every probed case green. Every declared guest must be probed or failed.
func TestSplitDeclared(t *testing.T) {
	t.Parallel()
	var spec Spec
	spec.Guests.Name = "auth"
	spec.Guests.Replicas = 3
	tests := []struct {
		name        string
		guests      []GuestStatus
		wantRunning []string
		wantMissing map[string]string // guest -> got
	}{
		{
			name:        "all running",
			guests:      []GuestStatus{{Name: "auth-1", State: "running"}, {Name: "auth-2", State: "running"}, {Name: "auth-3", State: "running"}},
			wantRunning: []string{"auth-1", "auth-2", "auth-3"},
			wantMissing: map[string]string{},
		},
		{
			name:        "one destroyed one stopped",
			guests:      []GuestStatus{{Name: "auth-1", State: "running"}, {Name: "auth-2", State: "stopped"}},
			wantRunning: []string{"auth-1"},
			wantMissing: map[string]string{"auth-2": "stopped", "auth-3": "absent"},
		},
		{
			name:        "undeclared running guest still probed",
			guests:      []GuestStatus{{Name: "auth-1", State: "running"}, {Name: "auth-2", State: "running"}, {Name: "auth-3", State: "running"}, {Name: "auth-4", State: "running"}},
			wantRunning: []string{"auth-1", "auth-2", "auth-3", "auth-4"},
			wantMissing: map[string]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			running, missing := SplitDeclared(spec, tt.guests)
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
