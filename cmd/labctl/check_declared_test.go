package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/service/check"
)

// A declared guest that is not running fails check (exit 1) and its case
// is a <failure> in JUnit.
func TestCheckFailsOnMissingGuest(t *testing.T) {
	t.Parallel()
	var spec provision.Spec
	spec.Guests.Name = "auth"
	spec.Guests.Replicas = 2
	_, missing := provision.SplitDeclared(spec, []provision.GuestStatus{{Name: "auth-1", State: "running"}})
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
