package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/labtest"
)

// TestSSHProvisionCommitConfirm: dom0 has a firewall rule of its own that
// drops SSH arriving on br0 (keeping guests off dom0's sshd). Provision
// over SSH makes eth1 a port of br0, so the host's SSH now arrives on br0
// and the connection is cut. No new connection can confirm, so dom0 rolls
// the run back by itself within the timeout: eth1 leaves br0 with its
// address, SSH works again, the journal says why, and the user's rule is
// untouched. Without that rule the same provision is confirmed and kept.
func TestSSHProvisionCommitConfirm(t *testing.T) {
	t.Parallel()
	s := newSSHLab(t)
	spec := fastSpec(t, "")
	journal := filepath.Join(s.dom0Root, s.Name, "journal.jsonl")
	rule := []string{"INPUT", "-i", "br0", "-p", "tcp", "--dport", "22", "-j", "DROP"}
	labtest.Exec(t, s.Dom0NS(), append([]string{"iptables", "-A"}, rule...)...)

	const timeout = 5 * time.Second
	start := time.Now()
	out, errOut, code := s.runHost(append([]string{"provision", "-f", spec, "--confirm-timeout", timeout.String()}, s.remote()...)...)
	if code == 0 || !strings.Contains(errOut, "rolls this provision back") {
		t.Fatalf("provision that cut dom0 off: exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
	// dom0 comes back by itself: reachable over SSH again (a plan does
	// not arm commit-confirm), with eth1 out of br0 and its address back.
	if !eventually(timeout+20*time.Second, func() bool {
		_, _, c := s.runHost(append([]string{"provision", "--plan", "-f", spec}, s.remote()...)...)
		return c == 0
	}) {
		t.Fatalf("dom0 not reachable over SSH %v after the provision started; dom0:\n%s\njournal:\n%s",
			time.Since(start).Round(time.Second), labtest.Exec(t, s.Dom0NS(), "ip", "-br", "addr"), readFile(t, journal))
	}
	addrs := labtest.Exec(t, s.Dom0NS(), "ip", "-4", "-br", "addr")
	if !regexpLine(addrs, `^eth1\S*\s+\S+\s+192\.168\.77\.2/24`) {
		t.Fatalf("eth1 did not get its address back:\n%s", addrs)
	}
	if link := labtest.Exec(t, s.Dom0NS(), "ip", "-o", "link", "show", "eth1"); strings.Contains(link, "master") {
		t.Fatalf("eth1 still a bridge port: %s", link)
	}
	j := readFile(t, journal)
	if !strings.Contains(j, `"kind":"note"`) || !strings.Contains(j, "not confirmed over a new connection") {
		t.Fatalf("the journal does not say why it rolled back:\n%s", j)
	}
	if rules := labtest.Exec(t, s.Dom0NS(), "iptables", "-S", "INPUT"); !strings.Contains(rules, "-A INPUT -i br0 -p tcp -m tcp --dport 22 -j DROP") {
		t.Fatalf("the user's rule was touched:\n%s", rules)
	}

	// The rule gone, the same provision is confirmed over a new
	// connection and kept; the watchdog leaves nothing behind.
	labtest.Exec(t, s.Dom0NS(), append([]string{"iptables", "-D"}, rule...)...)
	s.mustHost(append([]string{"provision", "-f", spec, "--confirm-timeout", timeout.String()}, s.remote()...)...)
	time.Sleep(timeout + 2*time.Second) // past the deadline: a watchdog that missed the confirmation would act now
	addrs = labtest.Exec(t, s.Dom0NS(), "ip", "-4", "-br", "addr")
	if !regexpLine(addrs, `^br0\s+UP\s+192\.168\.77\.2/24`) {
		t.Fatalf("the confirmed provision was rolled back:\n%s", addrs)
	}
	left, _ := filepath.Glob(filepath.Join(s.dom0Root, s.Name, "confirm", "*.json"))
	if len(left) > 0 {
		t.Fatalf("armed watchdog files left after confirmation: %v", left)
	}
	if _, err := os.Stat(journal); err != nil {
		t.Fatal(err)
	}
}
