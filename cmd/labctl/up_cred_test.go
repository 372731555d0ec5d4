package main

import (
	"net/http"
	"testing"
)

// Without a known password (john replaced: issue 10 item 10) up checks
// only what must be refused, so a healthy lab passes.
func TestRefusalCasesNeedNoPassword(t *testing.T) {
	cs := refusalCases("alice")
	if len(cs) < 5 {
		t.Fatalf("%d refusal cases, want the probe's refusals", len(cs))
	}
	for _, c := range cs {
		if c.WantStatus == http.StatusOK {
			t.Errorf("case %s wants a valid login", c.Name)
		}
	}
}
