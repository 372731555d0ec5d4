package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/labtest"
)

// A run reuses what iptables-save printed for the same nf_tables ruleset
// (rules-memo.json in the state root, keyed by the ruleset's digest)
// instead of running it again: a converged provision, the verify after a
// restore that rebuilt rules read before, a cold provision of a lab
// provisioned before. A rule changed by hand is another digest: the next
// run reads anew and sees the drift.
func TestRunsReuseRulesRead(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	real, err := exec.LookPath("iptables-save")
	if err != nil {
		t.Fatal(err)
	}
	// An iptables-save first on labctl's PATH that counts its runs.
	shim := t.TempDir()
	calls := filepath.Join(shim, "calls")
	script := fmt.Sprintf("#!/bin/sh\necho run >> %s\nexec %s \"$@\"\n", calls, real)
	if err := os.WriteFile(filepath.Join(shim, "iptables-save"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	runs := func() int {
		b, _ := os.ReadFile(calls)
		return bytes.Count(b, []byte("run\n"))
	}
	l := labtest.New(t, "lr", exe, "LABCTL_TEST_AS_CLI=1", "PATH="+shim+":"+os.Getenv("PATH"))
	l.MustRun("sim", "up")

	l.MustRun("provision", "--target", "sim")
	first := runs()
	if first == 0 {
		t.Fatal("provision never ran the iptables-save on its PATH: this test would prove nothing")
	}
	if out := l.MustRun("provision", "--target", "sim"); !strings.Contains(out, "nothing changed") {
		t.Fatalf("second provision changed something:\n%s", out)
	}
	if n := runs() - first; n != 0 {
		t.Fatalf("a converged provision ran iptables-save %d times, want 0 (the rules read last are kept)", n)
	}

	labtest.Exec(t, l.Dom0NS(), "iptables", "-t", "nat", "-D", "LABCTL-POST", "1")
	out, _, code := l.Run("status", "--target", "sim")
	if code != exitDrift || !strings.Contains(out, "nat") {
		t.Fatalf("status after a NAT rule was removed by hand: exit %d, want %d naming nat:\n%s", code, exitDrift, out)
	}
	if runs() == first {
		t.Fatal("status after a hand edit reused the rules read before it")
	}
	repairFrom := runs()
	l.MustRun("provision", "--target", "sim")
	// The repair reads the hand-edited rules (never read before: status
	// writes nothing); its verify finds the rules the first provision made.
	if n := runs() - repairFrom; n != 1 {
		t.Fatalf("the repair ran iptables-save %d times, want 1 (its verify is the first run's rules)", n)
	}
	if out, _, code := l.Run("status", "--target", "sim"); code != 0 {
		t.Fatalf("status after the repair: exit %d, want 0:\n%s", code, out)
	}

	// Down and up again: the cold provision makes the same rules, and
	// neither reads them (no labctl table before; the digest after).
	l.MustRun("teardown", "--target", "sim")
	coldFrom := runs()
	l.MustRun("provision", "--target", "sim")
	if n := runs() - coldFrom; n != 0 {
		t.Fatalf("a cold provision of rules made before ran iptables-save %d times, want 0", n)
	}
	st, err := os.Stat(filepath.Join(l.StateRoot, "rules-memo.json"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("rules-memo.json is %v, want 0600: it names every lab's chains", st.Mode().Perm())
	}
}
