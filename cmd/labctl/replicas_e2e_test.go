package main

import (
	"os"
	"path/filepath"
	"testing"
)

// Issue 13: deploy --replicas N is the lab's desired state until the spec
// file's guests.replicas changes: status afterwards is no drift and
// reports host_probe; a deploy without the flag keeps N; an edited spec
// wins.
func TestReplicasRemembered(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	spec := fastSpec(t, "")
	deployJSON(t, l, "-f", spec, "--replicas", "2")
	r, code := statusJSON(t, l, "-f", spec)
	if code != 0 || !r.OK {
		t.Fatalf("status after deploy --replicas 2: exit %d, drift %v", code, r.Drift)
	}
	if len(r.Guests) != 2 {
		t.Fatalf("status lists %d guests, want 2", len(r.Guests))
	}
	for _, g := range r.Guests {
		if g.HostProbe != "ok" {
			t.Fatalf("status: guest %s host_probe %q, want ok", g.Name, g.HostProbe)
		}
	}
	if r := deployJSON(t, l, "-f", spec); len(r.Guests) != 2 {
		t.Fatalf("deploy without --replicas after --replicas 2: %d guests, want 2", len(r.Guests))
	}
	// The spec file now says 3: it decides again.
	if err := os.WriteFile(spec, []byte("users:\n  iterations: 1000\nguests:\n  replicas: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := deployJSON(t, l, "-f", spec); len(r.Guests) != 3 {
		t.Fatalf("deploy after the spec changed to 3: %d guests, want 3", len(r.Guests))
	}
	// Back to the spec's own count: the record is forgotten.
	deployJSON(t, l, "-f", spec, "--replicas", "3")
	if _, err := os.Stat(filepath.Join(l.StateDir(), "desired.json")); !os.IsNotExist(err) {
		t.Fatalf("desired.json kept though --replicas equals the spec's: %v", err)
	}
}
