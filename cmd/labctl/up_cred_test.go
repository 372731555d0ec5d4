package main

import (
	"context"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/service/check"
)

// Without a known password (john replaced: issue 10 item 10) up checks
// only what must be refused, so a healthy lab passes.
func TestRefusalCasesNeedNoPassword(t *testing.T) {
	t.Parallel()
	cs := check.RefusalCases("alice")
	if len(cs) < 5 {
		t.Fatalf("%d refusal cases, want the probe's refusals", len(cs))
	}
	for _, c := range cs {
		if c.WantStatus == http.StatusOK {
			t.Errorf("case %s wants a valid login", c.Name)
		}
	}
}

// Once the demo user is replaced (as the README advises), up still
// succeeds: it checks what it can without a password (issue 10 item 10).
func TestUpAfterDemoUserReplaced(t *testing.T) {
	t.Parallel()
	exe, _ := os.Executable()
	l := labtest.New(t, "ur", exe, "LABCTL_TEST_AS_CLI=1")
	spec := fastSpec(t, "")
	l.MustRun("up", "--target", "sim", "-f", spec)
	add := l.Command(context.Background(), nil, "users", "add", "alice", "--password-stdin", "-f", spec)
	add.Stdin = strings.NewReader("s3cret pass\n")
	if b, err := add.CombinedOutput(); err != nil {
		t.Fatalf("users add: %v\n%s", err, b)
	}
	l.MustRun("users", "remove", "john", "-f", spec)
	out := l.MustRun("up", "--target", "sim", "-f", spec)
	if !strings.Contains(out, "user=alice&password=PASSWORD") || strings.Contains(out, "user=john") {
		t.Errorf("the try line does not name a user the lab has:\n%s", out)
	}
	l.MustRun("down", "--target", "sim", "-f", spec)
}

// up checks one valid and one wrong credential by default (the whole
// probe is check's, or up --full-check's); without a known password,
// two refusals.
func TestUpCases(t *testing.T) {
	t.Parallel()
	names := func(cs []check.Case) string {
		var n []string
		for _, c := range cs {
			n = append(n, c.Name)
		}
		return strings.Join(n, ",")
	}
	if got := names(upCases("john", "password")); got != "valid,wrong-password" {
		t.Errorf("with a password: %s", got)
	}
	if got := names(upCases("alice", "")); got != "wrong-password,unknown-user" {
		t.Errorf("without one: %s", got)
	}
}
