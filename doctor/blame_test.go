package doctor

import (
	"context"
	"strings"
	"testing"
)

func TestBlameProbes(t *testing.T) {
	ok := func(from Layer) ProbeResult {
		return ProbeResult{From: from, Target: "192.168.77.10:8088", Ran: true, OK: true, Detail: "200 hello"}
	}
	bad := func(from Layer) ProbeResult {
		return ProbeResult{From: from, Target: "192.168.77.10:8088", Ran: true, Detail: "dial tcp: i/o timeout"}
	}
	none := ProbeResult{}
	tests := []struct {
		name    string
		dom0    ProbeResult
		host    ProbeResult
		status  Status
		fix     string
		meaning string
	}{
		{"both reach the guest", ok(LayerDom0), ok(LayerHost), StatusOK, "", ""},
		{"dom0 yes, host no: VirtualBox", ok(LayerDom0), bad(LayerHost), StatusFail,
			"VBoxManage controlvm labctl-dom0 nicpromisc2 allow-all", "VirtualBox layer"},
		{"neither: guest or dom0", bad(LayerDom0), bad(LayerHost), StatusFail, "xl console auth-1", "dom0 itself"},
		{"host yes, dom0 no", bad(LayerDom0), ok(LayerHost), StatusWarn, "", "dom0's own probe"},
		{"dom0 probe not run", none, bad(LayerHost), StatusWarn, "", "both probes"},
		{"host probe not run", ok(LayerDom0), none, StatusWarn, "", "both probes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := BlameProbes(GuestProbes{Guest: "auth-1", Dom0: tt.dom0, Host: tt.host}, "labctl-dom0", 2)
			if f.Layer != LayerGuest || f.Check != CheckGuestPath || f.Status != tt.status || f.Fix != tt.fix ||
				!strings.Contains(f.Meaning, tt.meaning) {
				t.Fatalf("got %+v\nwant status %s fix %q meaning ~%q", f, tt.status, tt.fix, tt.meaning)
			}
			if !strings.Contains(f.Detail, "auth-1") {
				t.Errorf("detail %q does not name the guest", f.Detail)
			}
		})
	}
}

// The rule's fix agrees with the host check's fix for the same adapter.
func TestBlameFixMatchesHostCheck(t *testing.T) {
	s := healthy(t)
	s.fake.Human[vm] = vboxFixture(t, "showvminfo-human-constructed-dom0-deny.txt")
	fs := s.run(t, HostConfig{})
	host, _ := Find(fs, CheckPromiscPolicy)
	blame := BlameProbes(GuestProbes{Guest: "g",
		Dom0: ProbeResult{Ran: true, OK: true}, Host: ProbeResult{Ran: true}}, vm, 2)
	if host.Fix != blame.Fix {
		t.Fatalf("host fix %q, blame fix %q", host.Fix, blame.Fix)
	}
}

func TestRouteUnconfirmed(t *testing.T) {
	s := healthy(t)
	s.fake.Err = map[string]error{"Version": context.DeadlineExceeded}
	fs, err := CheckHost(context.Background(), HostDeps{VBox: s.fake,
		Net: fakeNet{routeFile: "proc-net-route-constructed-laptop-lab.txt", ifs: []Interface{{Name: "wlan0"}}}},
		HostConfig{VM: vm, Subnet: lab})
	if err != nil {
		t.Fatal(err)
	}
	f, _ := Find(fs, CheckRoute)
	if f.Status != StatusWarn || !strings.Contains(f.Detail, "vboxnet4") {
		t.Fatalf("route = %+v, want an unconfirmed warning", f)
	}
}
