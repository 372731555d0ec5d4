package doctor

import (
	"errors"
	"strings"
	"testing"
)

var guestCfg = GuestConfig{Deploy: "labctl deploy", Logs: "/var/lib/labctl/mirage/guests/%s/console.log on dom0"}

func healthyGuest() GuestObs {
	return GuestObs{
		Name: "auth-1", MAC: "00:16:3e:32:b4:d2", IP: "192.168.77.3", Port: 8088, Runtime: "process",
		Running: true, State: "running", LeaseIP: "192.168.77.3",
		NeighborMAC: "00:16:3e:32:b4:d2", NeighborState: "REACHABLE",
		Dom0Probe: ProbeResult{From: LayerDom0, Target: "192.168.77.3:8088", Ran: true, OK: true, Detail: `401 "No user given"`},
	}
}

func TestCheckGuestHealthy(t *testing.T) {
	fs := CheckGuest(guestCfg, healthyGuest())
	want := []string{CheckGuestState, CheckLease, CheckNeighbor, CheckProbeDom0}
	if len(fs) != len(want) {
		t.Fatalf("findings %+v", fs)
	}
	for i, f := range fs {
		if f.Check != want[i] || f.Layer != LayerGuest || f.Subject != "auth-1" || f.Status != StatusOK || f.Detail == "" || f.Fix != "" {
			t.Errorf("finding %d: %+v, want %s ok for auth-1", i, f, want[i])
		}
	}
}

func TestCheckGuestFaults(t *testing.T) {
	down := func(o *GuestObs) {
		o.Dom0Probe.OK, o.Dom0Probe.Detail = false, "dial tcp 192.168.77.3:8088: connect: connection refused"
	}
	tests := []struct {
		name    string
		obs     func(*GuestObs)
		check   string
		status  Status
		detail  string
		fix     string
		meaning string
	}{
		{"guest killed", func(o *GuestObs) { o.Running, o.State = false, "stopped"; down(o) },
			CheckGuestState, StatusFail, "auth-1 is stopped (process runtime)", "labctl deploy", "/var/lib/labctl/mirage/guests/auth-1/console.log on dom0"},
		{"runtime cannot tell", func(o *GuestObs) { o.StateErr = errors.New("xl list: exit status 1") },
			CheckGuestState, StatusFail, "xl list", "", "cannot tell"},
		{"killed guest's service refuses", down,
			CheckProbeDom0, StatusFail, "192.168.77.3:8088: dial tcp 192.168.77.3:8088: connect: connection refused", "labctl deploy", "dom0 itself cannot talk"},
		{"probe not made", func(o *GuestObs) { o.Dom0Probe = ProbeResult{Detail: "no address"} },
			CheckProbeDom0, StatusWarn, "not probed: no address", "", "cannot be placed"},
		{"no lease", func(o *GuestObs) { o.LeaseIP = "" },
			CheckLease, StatusFail, "no unexpired lease for 00:16:3e:32:b4:d2 (pinned to 192.168.77.3)", "labctl deploy", "another DHCP server did"},
		{"lease from the range, not the pin", func(o *GuestObs) { o.LeaseIP = "192.168.77.57" },
			CheckLease, StatusFail, "leased 192.168.77.57, but its pin is 192.168.77.3", "labctl deploy", "pin was not loaded"},
		{"lease file gone", func(o *GuestObs) { o.LeaseErr = errors.New("lease file: no such file") },
			CheckLease, StatusFail, "no such file", "labctl deploy", "dnsmasq never ran"},
		{"no ARP answer", func(o *GuestObs) { o.NeighborMAC, o.NeighborState = "", "FAILED"; down(o) },
			CheckNeighbor, StatusFail, "no ARP answer for 192.168.77.3 (FAILED)", "labctl deploy", "nothing on the bridge answers ARP"},
		{"no entry at all", func(o *GuestObs) { o.NeighborMAC, o.NeighborState = "", "" },
			CheckNeighbor, StatusFail, "(none)", "labctl deploy", "vif is not on the bridge"},
		{"address conflict", func(o *GuestObs) { o.NeighborMAC = "08:00:27:aa:bb:cc" },
			CheckNeighbor, StatusFail, "192.168.77.3 is at 08:00:27:aa:bb:cc (REACHABLE), not at the guest's 00:16:3e:32:b4:d2",
			"find the machine with MAC 08:00:27:aa:bb:cc and take 192.168.77.3 from it, then labctl deploy", "address conflict"},
		{"stale entry, probe failed", func(o *GuestObs) { o.NeighborState = "STALE"; down(o) },
			CheckNeighbor, StatusWarn, "was at 00:16:3e:32:b4:d2 (STALE, unconfirmed)", "", "not been heard from"},
		{"neighbours unreadable", func(o *GuestObs) { o.NeighborErr = errors.New("bridge br0: Link not found") },
			CheckNeighbor, StatusWarn, "Link not found", "", "cannot be read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := healthyGuest()
			tt.obs(&o)
			fs := CheckGuest(guestCfg, o)
			f, ok := Find(fs, tt.check)
			if !ok {
				t.Fatalf("no %s finding: %+v", tt.check, fs)
			}
			if f.Subject != "auth-1" || f.Status != tt.status || !strings.Contains(f.Detail, tt.detail) || f.Fix != tt.fix || !strings.Contains(f.Meaning, tt.meaning) {
				t.Fatalf("got %+v\nwant status %s, detail ~%q, fix %q, meaning ~%q", f, tt.status, tt.detail, tt.fix, tt.meaning)
			}
		})
	}
}

// A stale ARP entry counts as fine when the probe just went through: the
// probe's own traffic will confirm it.
func TestCheckGuestStaleButAnswering(t *testing.T) {
	o := healthyGuest()
	o.NeighborState = "DELAY"
	f, _ := Find(CheckGuest(guestCfg, o), CheckNeighbor)
	if f.Status != StatusOK {
		t.Fatalf("got %+v", f)
	}
}
