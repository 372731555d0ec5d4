package main

import (
	"encoding/json"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/internal/procs"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/trace"
	"github.com/labctl/labctl/vmctl"
)

func runTrace(t *testing.T, l *labtest.Lab, spec string, extra ...string) (traceReport, int) {
	t.Helper()
	out, errOut, code := l.Run(append([]string{"trace", "auth-1", "--target", "sim", "--json", "-f", spec}, extra...)...)
	var r traceReport
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("trace output is not JSON (exit %d): %v\nstdout:\n%s\nstderr:\n%s", code, err, out, errOut)
	}
	if r.Schema != provision.SchemaVersion || r.Command != "trace" || len(r.Hops) != len(trace.HopOrder) {
		t.Fatalf("trace report header or hops: %+v", r)
	}
	for i, h := range r.Hops {
		if h.ID != trace.HopOrder[i] {
			t.Fatalf("hop %d is %s, want %s", i, h.ID, trace.HopOrder[i])
		}
	}
	return r, code
}

func hopOf(r traceReport, id string) trace.Hop {
	for _, h := range r.Hops {
		if h.ID == id {
			return h
		}
	}
	return trace.Hop{}
}

// TestTraceFaults breaks one hop of a deployed sim lab at a time and
// checks that trace names that hop, that no earlier hop fails, and that it
// prints a fix; then repairs the fault and checks the path is clean again.
func TestTraceFaults(t *testing.T) {
	t.Parallel()
	testenvTool(t, "dhcp_release") // the "lease gone" fault (dnsmasq-utils)
	l := newLab(t)
	spec := fastSpec(t, "")
	deployJSON(t, l, "-f", spec)
	dom0, host := l.Dom0NS(), l.HostNS()

	clean := func(t *testing.T, from string) {
		t.Helper()
		var r traceReport
		var code int
		// A repaired path may need a moment (ARP, a restarted guest's lease).
		if !eventually(15*time.Second, func() bool {
			r, code = runTrace(t, l, spec, "--from", from)
			return code == 0 && r.OK && r.Verdict == ""
		}) {
			t.Fatalf("trace --from %s of a healthy lab: exit %d, verdict %q, hops %+v", from, code, r.Verdict, r.Hops)
		}
		for _, h := range r.Hops {
			want := trace.StatusOK
			if from == "dom0" && (h.ID == trace.HopHostRoute || h.ID == trace.HopHostARP || h.ID == trace.HopHostLink) {
				want = trace.StatusSkip
			}
			if h.Status != want {
				t.Fatalf("healthy lab, --from %s: hop %s is %s (%s), want %s", from, h.ID, h.Status, h.Detail, want)
			}
		}
		if f := hopOf(r, trace.HopForward); !strings.Contains(f.Detail, "masqueraded 1") {
			t.Fatalf("forward hop does not show the probe counted by MASQUERADE: %s", f.Detail)
		}
	}
	clean(t, "host")
	clean(t, "dom0")

	guestIP := deployedIP(t, l)
	faults := []struct {
		name   string
		inject func(t *testing.T)
		hop    string
		status string
		fix    string // substring of the verdict hop's fix
		repair func(t *testing.T, fix string)
	}{
		{name: "host route removed",
			inject: func(t *testing.T) {
				labtest.Exec(t, host, "ip", "route", "del", "192.168.77.0/24", "dev", vmctl.SimHostIf)
			},
			hop: trace.HopHostRoute, status: trace.StatusFail, fix: "sudo ip netns exec " + host + " ip route replace 192.168.77.0/24 dev vboxnet4",
			repair: func(t *testing.T, _ string) {
				labtest.Exec(t, host, "ip", "route", "add", "192.168.77.0/24", "dev", vmctl.SimHostIf, "src", "192.168.77.1")
			}},
		{name: "eth1 promisc off",
			inject: func(t *testing.T) { labtest.Exec(t, dom0, "ip", "link", "set", "eth1", "promisc", "off") },
			hop:    trace.HopPromisc, status: trace.StatusWarn, fix: "labctl provision --target sim --lab " + l.Name,
			repair: func(t *testing.T, _ string) { labtest.Exec(t, dom0, "ip", "link", "set", "eth1", "promisc", "on") }},
		{name: "guest's port down",
			inject: func(t *testing.T) { labtest.Exec(t, dom0, "ip", "link", "set", vmctl.VifName(1), "down") },
			hop:    trace.HopBridgePort, status: trace.StatusFail, fix: "labctl deploy --target sim --lab " + l.Name,
			repair: func(t *testing.T, _ string) { labtest.Exec(t, dom0, "ip", "link", "set", vmctl.VifName(1), "up") }},
		{name: "lease gone",
			inject: func(t *testing.T) {
				labtest.Exec(t, dom0, "dhcp_release", "br0", guestIP, guestMAC(t, l.Name+"-g1").String())
				if !eventually(5*time.Second, func() bool {
					return !strings.Contains(labtest.Exec(t, dom0, "cat", l.StateDir()+"/dnsmasq/dnsmasq.leases"), guestIP)
				}) {
					t.Fatal("dnsmasq kept the lease")
				}
			},
			// The printed fix itself: a running guest asks again only at
			// renewal, so it must be rebooted.
			hop: trace.HopLease, status: trace.StatusFail, fix: "labctl destroy auth-1 --target sim --lab " + l.Name,
			repair: func(t *testing.T, fix string) {
				for _, part := range strings.Split(fix, " && ") {
					applyFix(t, l, part)
				}
			}},
		{name: "FORWARD DROP",
			inject: func(t *testing.T) { labtest.Exec(t, dom0, "iptables", "-I", "FORWARD", "1", "-j", "DROP") },
			hop:    trace.HopForward, status: trace.StatusFail, fix: "labctl provision --target sim --lab " + l.Name,
			repair: func(t *testing.T, _ string) { labtest.Exec(t, dom0, "iptables", "-D", "FORWARD", "-j", "DROP") }},
		{name: "guest stopped",
			inject: func(t *testing.T) {
				pid := guestPid(t, l, "auth-1")
				syscall.Kill(pid, syscall.SIGKILL)
				if !eventually(5*time.Second, func() bool { return !procs.Alive(pid) }) {
					t.Fatal("guest did not die")
				}
			},
			hop: trace.HopTCP, status: trace.StatusFail, fix: "labctl deploy --target sim --lab " + l.Name,
			repair: func(t *testing.T, _ string) { deployJSON(t, l, "-f", spec) }},
	}
	for _, f := range faults {
		t.Run(f.name, func(t *testing.T) {
			f.inject(t)
			r, code := runTrace(t, l, spec)
			defer func() { f.repair(t, hopOf(r, f.hop).Fix); clean(t, "host") }()
			if r.Verdict != f.hop {
				t.Fatalf("verdict %q, want %q; hops:\n%s", r.Verdict, f.hop, hopsText(r))
			}
			h := hopOf(r, f.hop)
			if h.Status != f.status || !strings.Contains(h.Fix, f.fix) {
				t.Fatalf("hop %s: status %s fix %q, want %s with %q; hops:\n%s", f.hop, h.Status, h.Fix, f.status, f.fix, hopsText(r))
			}
			wantCode := 1
			if f.status == trace.StatusWarn {
				wantCode = 0
			}
			if code != wantCode {
				t.Fatalf("exit %d, want %d", code, wantCode)
			}
			if f.hop == trace.HopHostRoute {
				// dom0's own path does not use the host's route; and the
				// text report names the hop and its fix.
				if d, code := runTrace(t, l, spec, "--from", "dom0"); code != 0 || d.Verdict != "" {
					t.Fatalf("--from dom0 with the host's route removed: exit %d, verdict %q:\n%s", code, d.Verdict, hopsText(d))
				}
				out, _, _ := l.Run("trace", "auth-1", "--target", "sim", "-f", spec)
				if !strings.Contains(out, "first failing hop: host-route (fail)") || !strings.Contains(out, "  fix:     "+h.Fix) {
					t.Fatalf("text report:\n%s", out)
				}
			}
			for _, e := range r.Hops {
				if e.ID == f.hop {
					break
				}
				if e.Status == trace.StatusFail || e.Status == f.status && !e.Symptom {
					t.Fatalf("hop %s before %s is %s: %s", e.ID, f.hop, e.Status, e.Detail)
				}
			}
		})
	}
}

func hopsText(r traceReport) string {
	var b strings.Builder
	for _, h := range r.Hops {
		b.WriteString("  " + h.ID + " " + h.Status + ": " + h.Detail + "\n")
	}
	return b.String()
}

func deployedIP(t *testing.T, l *labtest.Lab) string {
	t.Helper()
	g, err := trace.FindGuest(l.StateDir(), "auth-1")
	if err != nil {
		t.Fatal(err)
	}
	return g.IP.String()
}
