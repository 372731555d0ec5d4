package doctor

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/labctl/labctl/netsetup"
)

var dom0Cfg = Dom0Config{
	Lab: "mt2", Bridge: "br0", Uplink: "eth1", Address: netip.MustParsePrefix("192.168.77.2/24"),
	Promiscuous: true, Runtime: "process", Provision: "labctl provision",
	DnsmasqConf: "/var/lib/labctl/mt2/dnsmasq/dnsmasq.conf",
}

// healthyDom0 is the provisioned sim dom0 the fixtures were recorded in:
// labctl's dnsmasq is pid 18850 and holds the DHCP socket 880808 and the
// DNS sockets; inode 880925 (the recorded rogue) is left unowned here and
// given an owner by the cases that need one.
func healthyDom0(t *testing.T) Dom0Obs {
	t.Helper()
	mac, _ := net.ParseMAC("08:00:27:3c:d2:02")
	udp, err := ParseProcNetSockets("udp", readTestdata(t, "proc-net-udp-recorded-sim-dom0-rogue.txt"))
	if err != nil {
		t.Fatal(err)
	}
	tcp, err := ParseProcNetSockets("tcp", readTestdata(t, "proc-net-tcp-recorded-sim-dom0.txt"))
	if err != nil {
		t.Fatal(err)
	}
	var socks []Socket
	for _, s := range append(udp, tcp...) {
		if s.Inode != 880925 {
			socks = append(socks, s)
		}
	}
	ours := []Proc{{Pid: 18850, Comm: "dnsmasq", Cmdline: "dnsmasq --conf-file=/var/lib/labctl/mt2/dnsmasq/dnsmasq.conf"}}
	return Dom0Obs{
		Runtimes: []RuntimeObs{{Name: "xen", Findings: []Finding{{Check: "xen", Status: StatusFail, Detail: "xl not found: the Xen toolstack is not installed",
			Meaning: "dom0 is not running under the Xen hypervisor (or xl cannot talk to it): no guest can be created", Fix: "install Xen"}}}},
		Tools: []ToolObs{
			{Tool: "dnsmasq", Desired: ">= 2.80.0", Observed: "2.90.0", OK: true},
			{Tool: "iptables", Desired: ">= 1.6.2", Observed: "1.8.9 (nf_tables)", OK: true},
		},
		Links: []netsetup.Link{
			{Name: "lo", Index: 1, Type: "device", Up: true},
			{Name: "eth1", Index: 2, Type: "veth", Up: true, Promisc: true, Master: "br0", MAC: mac},
			{Name: "br0", Index: 4, Type: "bridge", Up: true, MAC: mac, Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.77.2/24")}},
			{Name: "vif1.0", Index: 5, Type: "veth", Up: true, Master: "br0"},
		},
		IPForward:      "1",
		DnsmasqPid:     18850,
		DnsmasqConf:    "current",
		DnsmasqIfIndex: 4,
		Sockets:        socks,
		Owners:         map[uint64][]Proc{880808: ours, 881697: ours, 881698: ours},
		IPTablesSave:   []byte(readTestdata(t, "iptables-save-recorded-sim-dom0.txt")),
	}
}

func TestCheckDom0Healthy(t *testing.T) {
	fs := CheckDom0(dom0Cfg, healthyDom0(t))
	wantOrder := []string{"xen", CheckDnsmasqVersion, CheckIPTablesVersion, CheckBridge, CheckUplink, CheckIPForward,
		CheckDnsmasq, CheckServerConflict, CheckForwardPolicy, CheckDockerFirewalld}
	if len(fs) != len(wantOrder) {
		t.Fatalf("%d findings, want %d: %+v", len(fs), len(wantOrder), fs)
	}
	for i, f := range fs {
		if f.Check != wantOrder[i] || f.Layer != LayerDom0 || f.Status != StatusOK || f.Detail == "" || f.Fix != "" || f.Meaning != "" {
			t.Errorf("finding %d: %+v, want check %s ok with a detail and no fix", i, f, wantOrder[i])
		}
	}
	if f, _ := Find(fs, "xen"); !strings.Contains(f.Detail, "not needed: guests.runtime is process") {
		t.Errorf("xen for the process runtime: %+v", f)
	}
	if f, _ := Find(fs, CheckBridge); f.Detail != "br0 is up with 192.168.77.2/24; ports: eth1, vif1.0" {
		t.Errorf("bridge detail %q", f.Detail)
	}
}

func TestCheckDom0Faults(t *testing.T) {
	tests := []struct {
		name    string
		cfg     func(*Dom0Config)
		obs     func(*Dom0Obs)
		check   string
		status  Status
		detail  string // substring
		fix     string // exact
		meaning string // substring
	}{
		{"xen runtime without Xen", func(c *Dom0Config) { c.Runtime = "xen" }, nil,
			"xen", StatusFail, "xl not found", "install Xen", "not running under the Xen hypervisor"},
		{"dnsmasq missing", nil, func(o *Dom0Obs) {
			o.Tools[0] = ToolObs{Tool: "dnsmasq", Desired: ">= 2.80.0", Observed: `missing: install dnsmasq-base (exec: "dnsmasq": executable file not found in $PATH)`}
		}, CheckDnsmasqVersion, StatusFail, "executable file not found", "apt-get install dnsmasq-base", "cannot converge"},
		{"dnsmasq too old", nil, func(o *Dom0Obs) { o.Tools[0] = ToolObs{Tool: "dnsmasq", Desired: ">= 2.80.0", Observed: "2.78.0"} },
			CheckDnsmasqVersion, StatusFail, "dnsmasq 2.78.0; labctl needs >= 2.80.0", "apt-get install dnsmasq-base", "newer releases"},
		{"iptables too old", nil, func(o *Dom0Obs) { o.Tools[1] = ToolObs{Tool: "iptables", Desired: ">= 1.6.2", Observed: "1.4.21"} },
			CheckIPTablesVersion, StatusFail, "iptables 1.4.21; labctl needs >= 1.6.2", "apt-get install iptables", "newer releases"},
		{"links unreadable", nil, func(o *Dom0Obs) { o.LinksErr = errors.New("netlink: operation not permitted") },
			CheckBridge, StatusFail, "operation not permitted", "", "cannot be listed"},
		{"br0 deleted", nil, func(o *Dom0Obs) { o.Links = without(o.Links, "br0") },
			CheckBridge, StatusFail, "br0 does not exist", "labctl provision", "no bridge"},
		{"br0 taken by a veth", nil, func(o *Dom0Obs) { o.Links = retype(o.Links, "br0", "veth") },
			CheckBridge, StatusFail, "br0 is a veth", "ip link delete br0 && labctl provision", "took the bridge's name"},
		{"br0 down", nil, func(o *Dom0Obs) { o.Links = edit(o.Links, "br0", func(l *netsetup.Link) { l.Up = false }) },
			CheckBridge, StatusFail, "br0 is down", "labctl provision", "forwards nothing"},
		{"br0 without address", nil, func(o *Dom0Obs) { o.Links = edit(o.Links, "br0", func(l *netsetup.Link) { l.Addrs = nil }) },
			CheckBridge, StatusFail, "without 192.168.77.2/24 (has no IPv4 address)", "labctl provision", "lacks dom0's lab address"},
		{"uplink renamed", nil, func(o *Dom0Obs) { o.Links = without(o.Links, "eth1") },
			CheckUplink, StatusFail, "eth1 does not exist (interfaces: br0, vif1.0)", "set network.uplink in the lab spec to dom0's host-only NIC (ip -br link), then labctl provision", "adapter 2"},
		{"uplink out of br0", nil, func(o *Dom0Obs) { o.Links = edit(o.Links, "eth1", func(l *netsetup.Link) { l.Master = "" }) },
			CheckUplink, StatusFail, "eth1 is not a port of br0 (master: none)", "labctl provision", "while dom0 still can"},
		{"uplink down", nil, func(o *Dom0Obs) { o.Links = edit(o.Links, "eth1", func(l *netsetup.Link) { l.Up = false }) },
			CheckUplink, StatusFail, "eth1 is down", "labctl provision", "nothing passes"},
		{"promisc off", nil, func(o *Dom0Obs) { o.Links = edit(o.Links, "eth1", func(l *netsetup.Link) { l.Promisc = false }) },
			CheckUplink, StatusWarn, "PROMISC flag is off", "labctl provision", "spec asks"},
		{"ip_forward 0", nil, func(o *Dom0Obs) { o.IPForward = "0" },
			CheckIPForward, StatusFail, "net.ipv4.ip_forward = 0", "labctl provision", "does not route"},
		{"dnsmasq killed", nil, func(o *Dom0Obs) { o.DnsmasqPid, o.Sockets, o.Owners = 0, nil, nil },
			CheckDnsmasq, StatusFail, "not running (config current)", "labctl provision", "no DHCP on br0"},
		{"dnsmasq's pidfile lost: not a rival of itself", nil, func(o *Dom0Obs) { o.DnsmasqPid = 0 },
			CheckDnsmasq, StatusFail, "not running (config current)", "labctl provision", "no DHCP on br0"},
		{"dnsmasq config edited", nil, func(o *Dom0Obs) { o.DnsmasqConf = "differs" },
			CheckDnsmasq, StatusWarn, "its config is differs", "labctl provision", "other than the spec"},
		{"dnsmasq on a deleted br0", nil, func(o *Dom0Obs) { o.DnsmasqIfIndex = 3 },
			CheckDnsmasq, StatusFail, "(index 3) that was deleted", "labctl provision", "re-created bridge"},
		{"rogue DHCP server (recorded)", nil, func(o *Dom0Obs) {
			o.Sockets = append(o.Sockets, Socket{Proto: "udp", Local: netip.MustParseAddrPort("0.0.0.0:67"), State: 7, Inode: 880925})
			o.Owners[880925] = []Proc{{Pid: 18900, Comm: "dnsmasq", Cmdline: "dnsmasq --keep-in-foreground --interface=br0"}}
		}, CheckServerConflict, StatusFail, "another DHCP server listens on 0.0.0.0:67/udp: pid 18900 (dnsmasq: dnsmasq --keep-in-foreground --interface=br0)", "kill 18900", "may take its lease"},
		{"rogue DNS on the bridge address", nil, func(o *Dom0Obs) {
			o.Sockets = append(o.Sockets, Socket{Proto: "tcp", Local: netip.MustParseAddrPort("192.168.77.2:53"), State: 0x0A, Inode: 5})
			o.Owners[5] = []Proc{{Pid: 77, Comm: "named", Cmdline: "/usr/sbin/named -u bind"}}
		}, CheckServerConflict, StatusFail, "another DNS server listens on 192.168.77.2:53/tcp: pid 77 (named", "kill 77", "next to labctl's dnsmasq"},
		{"rogue DHCP with an invisible holder", nil, func(o *Dom0Obs) {
			o.Sockets = append(o.Sockets, Socket{Proto: "udp", Local: netip.MustParseAddrPort("0.0.0.0:67"), State: 7, Inode: 880925})
		}, CheckServerConflict, StatusFail, "socket inode 880925, holder not visible", "ss -lunp 'sport = :67'  # find and stop it", "may take its lease"},
		{"sockets unreadable", nil, func(o *Dom0Obs) { o.SocketsErr = errors.New("open /proc/self/net/udp: permission denied") },
			CheckServerConflict, StatusWarn, "permission denied", "", "cannot be ruled out"},
		{"FORWARD DROP, labctl's jump gone (Docker restarted)", nil, func(o *Dom0Obs) {
			o.IPTablesSave = []byte(readTestdata(t, "iptables-save-constructed-docker-drop.txt"))
		}, CheckForwardPolicy, StatusFail, "FORWARD policy DROP and no jump to labctl's LABCTL-FWD", "labctl provision", "Docker or firewalld set the policy"},
		{"FORWARD ACCEPT, labctl's jump gone", nil, func(o *Dom0Obs) {
			o.IPTablesSave = []byte(strings.Replace(readTestdata(t, "iptables-save-recorded-sim-dom0.txt"),
				"-A FORWARD -m comment --comment \"labctl:mt2\" -j LABCTL-FWD\n", "", 1))
		}, CheckForwardPolicy, StatusWarn, "FORWARD policy ACCEPT; labctl's jump to LABCTL-FWD is missing", "labctl provision", "harmless while"},
		{"unconditional DROP before labctl's jump", nil, func(o *Dom0Obs) {
			o.IPTablesSave = []byte(strings.Replace(readTestdata(t, "iptables-save-recorded-sim-dom0.txt"),
				"-A FORWARD -m comment", "-A FORWARD -j DROP\n-A FORWARD -m comment", 1))
		}, CheckForwardPolicy, StatusFail, `FORWARD has "-j DROP" before labctl's jump to LABCTL-FWD (rule 2)`, "labctl provision", "dropped before labctl's accepts"},
		{"iptables-save fails", nil, func(o *Dom0Obs) { o.IPTablesErr = errors.New("exit status 4") },
			CheckForwardPolicy, StatusFail, "iptables-save: exit status 4", "", "cannot be read"},
		{"iptables-save unparsable", nil, func(o *Dom0Obs) { o.IPTablesSave = []byte("*filter\n[0:0] -A FORWARD -j ACCEPT\nCOMMIT\n") },
			CheckForwardPolicy, StatusFail, "unexpected", "", "cannot be parsed"},
		{"Docker present", nil, func(o *Dom0Obs) {
			o.IPTablesSave = []byte(readTestdata(t, "iptables-save-constructed-docker-drop.txt"))
		},
			CheckDockerFirewalld, StatusWarn, "filter/DOCKER filter/DOCKER-ISOLATION-STAGE-1 filter/DOCKER-ISOLATION-STAGE-2 filter/DOCKER-USER nat/DOCKER", "labctl provision", "sets FORWARD's policy to DROP"},
		{"firewalld runs", nil, func(o *Dom0Obs) { o.Firewalld = []Proc{{Pid: 612, Comm: "firewalld"}} },
			CheckDockerFirewalld, StatusWarn, "firewalld runs (pid 612)", "firewall-cmd --permanent --zone=trusted --add-interface=br0 && firewall-cmd --reload && labctl provision", "trusted zone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := dom0Cfg
			if tt.cfg != nil {
				tt.cfg(&cfg)
			}
			o := healthyDom0(t)
			if tt.obs != nil {
				tt.obs(&o)
			}
			fs := CheckDom0(cfg, o)
			f, ok := Find(fs, tt.check)
			if !ok {
				t.Fatalf("no %s finding in %+v", tt.check, fs)
			}
			if f.Status != tt.status || !strings.Contains(f.Detail, tt.detail) || f.Fix != tt.fix || !strings.Contains(f.Meaning, tt.meaning) {
				t.Fatalf("got %+v\nwant status %s, detail ~%q, fix %q, meaning ~%q", f, tt.status, tt.detail, tt.fix, tt.meaning)
			}
			if f.Status != StatusOK && f.Meaning == "" {
				t.Errorf("a %s finding without meaning", f.Status)
			}
			// The fault shows in its own check: every other one stays as
			// in the healthy dom0, except those the same fault also breaks.
			related := map[string][]string{
				CheckBridge:          {CheckUplink, CheckDnsmasq},
				CheckUplink:          {CheckBridge},
				CheckForwardPolicy:   {CheckDockerFirewalld},
				CheckDockerFirewalld: {CheckForwardPolicy},
			}
			for _, g := range fs {
				if g.Check == tt.check || slicesContains(related[tt.check], g.Check) {
					continue
				}
				if g.Status != StatusOK {
					t.Errorf("unrelated finding changed: %+v", g)
				}
			}
		})
	}
}

// Docker's DROP policy is harmless while labctl's jump comes first.
func TestForwardDropWithLabctlJumpFirst(t *testing.T) {
	o := healthyDom0(t)
	o.IPTablesSave = []byte(strings.Replace(readTestdata(t, "iptables-save-constructed-docker-drop.txt"),
		"-A FORWARD -j DOCKER-USER\n", "-A FORWARD -m comment --comment \"labctl:mt2\" -j LABCTL-FWD\n-A FORWARD -j DOCKER-USER\n", 1))
	f, _ := Find(CheckDom0(dom0Cfg, o), CheckForwardPolicy)
	if f.Status != StatusOK || !strings.Contains(f.Detail, "FORWARD policy DROP, but labctl's jump to LABCTL-FWD is rule 1") {
		t.Fatalf("got %+v", f)
	}
	// Another lab's jump does not count for this one.
	f, _ = Find(CheckDom0(Dom0Config{Lab: "other", Bridge: "br0", Uplink: "eth1", Address: dom0Cfg.Address, Provision: "p"}, o), CheckForwardPolicy)
	if f.Status != StatusFail {
		t.Fatalf("lab other: %+v", f)
	}
}

func without(ls []netsetup.Link, name string) []netsetup.Link {
	var out []netsetup.Link
	for _, l := range ls {
		if l.Name == name {
			continue
		}
		if l.Master == name {
			l.Master = ""
		}
		out = append(out, l)
	}
	return out
}

func edit(ls []netsetup.Link, name string, f func(*netsetup.Link)) []netsetup.Link {
	out := append([]netsetup.Link(nil), ls...)
	for i := range out {
		if out[i].Name == name {
			f(&out[i])
		}
	}
	return out
}

func retype(ls []netsetup.Link, name, typ string) []netsetup.Link {
	return edit(ls, name, func(l *netsetup.Link) { l.Type = typ })
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}
