package trace

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/labctl/labctl/doctor"
)

func cfg() Config {
	return Config{Guest: "auth-1", MAC: mustMAC("00:16:3e:00:00:01"), IP: netip.MustParseAddr("192.168.77.3"), Port: 8088,
		Subnet: netip.MustParsePrefix("192.168.77.0/24"), From: "host", HostIf: "vboxnet4", Uplink: "eth1",
		Bridge: "br0", Vif: "vif1.0", Promiscuous: true, NAT: true, HostCmd: "sudo ", Reboot: "reboot-it"}
}

// healthy is a clean path's observations; each case breaks one thing.
func healthy() Obs {
	return Obs{
		Host: &HostObs{RouteDev: "vboxnet4", RouteAddrs: []netip.Prefix{netip.MustParsePrefix("192.168.77.1/24")},
			NeighMAC: "00:16:3e:00:00:01", NeighState: "REACHABLE", LinkFound: true, LinkUp: true, LinkCarrier: true},
		Dom0: Dom0Obs{
			Links: []LinkObs{{Name: "eth1", Up: true, Carrier: true, Promisc: true, Master: "br0"},
				{Name: "br0", Up: true, Carrier: true}, {Name: "vif1.0", Up: true, Carrier: true, Master: "br0"}},
			FDBPort: "vif1.0", LeaseIP: "192.168.77.3", NeighMAC: "00:16:3e:00:00:01", NeighSt: "REACHABLE",
			Forward:    ForwardObs{Probed: true, ProbeTo: "203.0.113.1:9", ProbeOK: true, Accepted: 2, Masqueraded: 1},
			GuestState: "running",
		},
		HTTPStatus: 401, HTTPBody: "No user given\n",
	}
}

func TestEvaluate(t *testing.T) {
	link := func(o *Obs, name string, f func(*LinkObs)) {
		for i := range o.Dom0.Links {
			if o.Dom0.Links[i].Name == name {
				f(&o.Dom0.Links[i])
			}
		}
	}
	cases := []struct {
		name    string
		breakIt func(o *Obs)
		verdict string
		status  string
		fix     string // substring of the verdict hop's own fix ("" = none expected)
	}{
		{"clean", func(o *Obs) {}, "", "", ""},
		{"no route", func(o *Obs) {
			o.Host.RouteErr, o.Host.NeighMAC, o.TCPErr = "network is unreachable", "", "network is unreachable"
		}, HopHostRoute, StatusFail, "sudo ip route replace 192.168.77.0/24 dev vboxnet4"},
		{"route via another interface", func(o *Obs) {
			o.Host.RouteDev, o.Host.RouteAddrs = "eth0", []netip.Prefix{netip.MustParsePrefix("10.0.0.5/8")}
		}, HopHostRoute, StatusFail, ""},
		{"ARP conflict", func(o *Obs) { o.Host.NeighMAC = "08:00:27:aa:bb:cc" }, HopHostARP, StatusFail, "ip neigh del"},
		{"vboxnet4 down", func(o *Obs) { o.Host.LinkUp, o.Host.NeighMAC = false, "" }, HopHostLink, StatusFail, ""},
		{"eth1 down", func(o *Obs) { link(o, "eth1", func(l *LinkObs) { l.Up = false }) }, HopHostLink, StatusFail, ""},
		{"promisc off", func(o *Obs) { link(o, "eth1", func(l *LinkObs) { l.Promisc = false }) }, HopPromisc, StatusWarn, ""},
		{"eth1 out of br0", func(o *Obs) { link(o, "eth1", func(l *LinkObs) { l.Master = "" }) }, HopPromisc, StatusFail, ""},
		{"port down, ARP unanswered upstream", func(o *Obs) {
			link(o, "vif1.0", func(l *LinkObs) { l.Up = false })
			o.Host.NeighMAC, o.Host.NeighState, o.Dom0.FDBPort, o.TCPErr = "", "FAILED", "", "no route to host"
		}, HopBridgePort, StatusFail, ""},
		{"bridge down", func(o *Obs) { link(o, "br0", func(l *LinkObs) { l.Up = false }) }, HopBridgePort, StatusFail, ""},
		{"MAC learned on the uplink", func(o *Obs) { o.Dom0.FDBPort = "eth1" }, HopBridgePort, StatusFail, ""},
		{"lease gone, guest running", func(o *Obs) { o.Dom0.LeaseIP = "" }, HopLease, StatusFail, "reboot-it"},
		{"lease gone, guest stopped", func(o *Obs) { o.Dom0.LeaseIP, o.Dom0.GuestState = "", "stopped" }, HopLease, StatusFail, ""},
		{"lease elsewhere", func(o *Obs) { o.Dom0.LeaseIP = "192.168.77.9" }, HopLease, StatusFail, ""},
		{"FORWARD drops", func(o *Obs) {
			o.Dom0.Forward = ForwardObs{Probed: true, ProbeTo: "203.0.113.1:9", ProbeErr: "i/o timeout",
				Dropped: []string{`filter/FORWARD rule 1 "-j DROP": 3 packets`}}
		}, HopForward, StatusFail, ""},
		{"NAT bypassed", func(o *Obs) { o.Dom0.Forward.Masqueraded = 0 }, HopForward, StatusWarn, ""},
		{"guest stopped", func(o *Obs) { o.TCPErr, o.Dom0.GuestState = "connection refused", "stopped" }, HopTCP, StatusFail, ""},
		{"wrong answer", func(o *Obs) { o.HTTPStatus, o.HTTPBody = 200, "hi" }, HopHTTP, StatusFail, ""},
		{"only a symptom", func(o *Obs) { o.Host.NeighMAC, o.Host.NeighState = "", "INCOMPLETE" }, HopHostARP, StatusWarn, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := healthy()
			c.breakIt(&o)
			hops := Evaluate(cfg(), o)
			if v := Verdict(hops); v != c.verdict {
				t.Fatalf("verdict %q, want %q: %+v", v, c.verdict, hops)
			}
			for _, h := range hops {
				if h.ID == c.verdict {
					if h.Status != c.status || !strings.Contains(h.Fix, c.fix) || (c.fix == "" && h.Fix != "") {
						t.Fatalf("hop %s: %s fix %q, want %s fix %q", h.ID, h.Status, h.Fix, c.status, c.fix)
					}
					break
				}
				if h.Status == StatusFail {
					t.Fatalf("hop %s before the verdict fails: %s", h.ID, h.Detail)
				}
			}
		})
	}
}

func TestEvaluateFromDom0SkipsHost(t *testing.T) {
	c := cfg()
	c.From = "dom0"
	o := healthy()
	o.Host.RouteErr = "would fail if looked at"
	hops := Evaluate(c, o)
	for _, h := range hops[:3] {
		if h.Status != StatusSkip {
			t.Fatalf("--from dom0: %s is %s", h.ID, h.Status)
		}
	}
	if v := Verdict(hops); v != "" {
		t.Fatalf("verdict %q", v)
	}
}

func TestJudgeTakesDoctorsFix(t *testing.T) {
	o := healthy()
	o.Dom0.Forward = ForwardObs{Probed: true, ProbeTo: "x", ProbeErr: "timeout"}
	fs := []doctor.Finding{
		{Layer: doctor.LayerGuest, Check: doctor.CheckGuestState, Subject: "auth-2", Status: doctor.StatusFail, Fix: "other guest"},
		{Layer: doctor.LayerDom0, Check: doctor.CheckForwardPolicy, Status: doctor.StatusFail, Fix: "labctl provision --lab x", Meaning: "m"},
	}
	r := Judge(cfg(), o, fs, map[string]string{HopForward: "fallback"})
	if r.OK || r.Verdict != HopForward {
		t.Fatalf("%+v", r)
	}
	h := r.Hops[7]
	if h.ID != HopForward || h.Fix != "labctl provision --lab x" || h.Doctor != "dom0/forward-policy" {
		t.Fatalf("forward hop: %+v", h)
	}
	// Without a matching finding, the fallback.
	r = Judge(cfg(), o, fs[:1], map[string]string{HopForward: "fallback"})
	if r.Hops[7].Fix != "fallback" || r.Hops[7].Doctor != "" {
		t.Fatalf("forward hop: %+v", r.Hops[7])
	}
}

func TestParseCounters(t *testing.T) {
	in := `# Generated by iptables-save v1.8.9 (nf_tables)
*filter
:INPUT ACCEPT [10:600]
:FORWARD ACCEPT [0:0]
:LABCTL-FWD - [0:0]
[5:300] -A FORWARD -j DROP
[7:420] -A FORWARD -m comment --comment "labctl:lt" -j LABCTL-FWD
[4:240] -A LABCTL-FWD -i br0 -m comment --comment "labctl:lt" -j ACCEPT
COMMIT
*nat
:POSTROUTING ACCEPT [1:60]
:LABCTL-POST - [0:0]
[1:60] -A LABCTL-POST -s 192.168.77.0/24 ! -d 192.168.77.0/24 -m comment --comment "labctl:lt" -j MASQUERADE
COMMIT
`
	after, err := ParseCounters([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if got := after["filter/FORWARD"]; len(got) != 2 || got[0] != (Counted{"-j DROP", 5}) {
		t.Fatalf("filter/FORWARD: %+v", got)
	}
	before, err := ParseCounters([]byte(strings.NewReplacer("[5:300]", "[2:120]", "[4:240]", "[1:60]", "[1:60] -A", "[0:0] -A").Replace(in)))
	if err != nil {
		t.Fatal(err)
	}
	acc, masq, dropped := forwardDeltas(before, after)
	if acc != 3 || masq != 1 || len(dropped) != 1 || !strings.Contains(dropped[0], `rule 1 "-j DROP": 3 packets`) {
		t.Fatalf("deltas: accepted %d masq %d dropped %v", acc, masq, dropped)
	}
	for _, bad := range []string{
		"*filter\n-A FORWARD -j DROP\nCOMMIT\n", // no counters
		"[1:2] -A FORWARD -j DROP\n",            // outside a table
		"*filter\n[x:2] -A FORWARD -j DROP\n",   // bad number
		"*filter\n[1:2] FORWARD\n",              // no -A
		"*filter\nbogus\n",
	} {
		if _, err := ParseCounters([]byte(bad)); err == nil || !strings.Contains(err.Error(), "line") {
			t.Errorf("%q: err %v, want one naming the line", bad, err)
		}
	}
}

func FuzzParseCounters(f *testing.F) {
	f.Add([]byte("*filter\n:FORWARD DROP [1:2]\n[3:4] -A FORWARD -j DROP\nCOMMIT\n"))
	f.Add([]byte("[1:2] -A X\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCounters(b)
		if err != nil {
			return
		}
		// Whatever parses gives deltas without panicking, and a dump
		// compared with itself moves nothing.
		acc, masq, dropped := forwardDeltas(c, c)
		if acc != 0 || masq != 0 || len(dropped) != 0 {
			t.Fatalf("self-delta moved: %d %d %v", acc, masq, dropped)
		}
	})
}

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}
