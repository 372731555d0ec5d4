package vbox

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/testenv"
)

func readFixture(t testing.TB, name string) string {
	return string(testenv.ReadFile(t, "testdata", name))
}

func TestParseVersion(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		fixture string
		want    Version
		wantErr bool
	}{
		{name: "warning block before version", fixture: "version-6.0.12-vboxdrv-warning.txt",
			want: Version{Major: 6, Minor: 0, Patch: 12, Revision: 133076, Raw: "6.0.12r133076"}},
		{name: "debian suffix", fixture: "version-5.1.6-debian-suffix.txt",
			want: Version{Major: 5, Minor: 1, Patch: 6, Suffix: "Debian", Revision: 110634, Raw: "5.1.6_Debianr110634"}},
		{name: "plain 7.x", fixture: "version-7.0.14-constructed.txt",
			want: Version{Major: 7, Minor: 0, Patch: 14, Revision: 161095, Raw: "7.0.14r161095"}},
		{name: "ubuntu suffix", in: "7.0.16_Ubuntur162802\n",
			want: Version{Major: 7, Minor: 0, Patch: 16, Suffix: "Ubuntu", Revision: 162802, Raw: "7.0.16_Ubuntur162802"}},
		{name: "OSE suffix without revision", in: "4.3.10_OSE\r\n",
			want: Version{Major: 4, Minor: 3, Patch: 10, Suffix: "OSE", Raw: "4.3.10_OSE"}},
		{name: "rpmfusion suffix", in: "6.1.30_rpmfusionr148432",
			want: Version{Major: 6, Minor: 1, Patch: 30, Suffix: "rpmfusion", Revision: 148432, Raw: "6.1.30_rpmfusionr148432"}},
		{name: "beta suffix with digit", in: "7.1.0_BETA1r163000",
			want: Version{Major: 7, Minor: 1, Patch: 0, Suffix: "BETA1", Revision: 163000, Raw: "7.1.0_BETA1r163000"}},
		{name: "only a warning", in: "WARNING: The vboxdrv kernel module is not loaded.\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
		{name: "two components", in: "7.0r1234", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if tt.fixture != "" {
				in = readFixture(t, tt.fixture)
			}
			got, err := ParseVersion(in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestVersionCompare(t *testing.T) {
	tests := []struct {
		v        string
		restrict bool
	}{
		{"6.1.27r1", false},
		{"6.1.28r147628", true},
		{"6.0.99", false},
		{"6.2.0", true},
		{"7.0.14r161095", true},
		{"5.2.44", false},
	}
	for _, tt := range tests {
		v, err := ParseVersion(tt.v)
		if err != nil {
			t.Fatalf("%s: %v", tt.v, err)
		}
		if got := v.RestrictsHostOnlyRanges(); got != tt.restrict {
			t.Errorf("%s: RestrictsHostOnlyRanges = %v, want %v", tt.v, got, tt.restrict)
		}
	}
}

func TestParseMachineReadable(t *testing.T) {
	tests := []struct {
		fixture   string
		want      map[string]string
		absent    []string
		other     []string
		nested    bool
		nestedKnw bool
		state     string
		nic2      NIC
	}{
		{
			fixture: "showvminfo-machinereadable-7.0-encryption-line.txt",
			want: map[string]string{
				"name":            "manjaro-gnome-x64-full-clean",
				"BIOS NVRAM File": "/home/user/VirtualBox VMs/manjaro-gnome-x64-full-clean/manjaro-gnome-x64-full-clean.nvram",
				"description":     "name1=value1\nname2=value2",
				"memory":          "4096",
				"IDE-1-0":         "emptydrive",
				"rec_screen_opts": "vc_enabled=true,ac_enabled=false,ac_profile=med",
				// the key after the multi-line value is still read
				"GuestMemoryBalloon": "0",
			},
			other:     []string{"Encryption:     disabled", "rec_screen0"},
			nested:    false,
			nestedKnw: true,
			state:     "poweroff",
			nic2:      NIC{Index: 2, Type: "none"},
		},
		{
			fixture: "showvminfo-machinereadable-6.0-ohai.txt",
			want: map[string]string{
				"IDE Controller-0-0":            "none",
				"vrdeproperty[TCP/Ports]":       "5947",
				"SATA Controller-ImageUUID-0-0": "1c182745-4b09-41a1-a147-d3ced46f72f6",
				"CurrentSnapshotNode":           "SnapshotName",
			},
			absent:    []string{"nested-hw-virt"},
			nestedKnw: false,
			state:     "poweroff",
			nic2:      NIC{Index: 2, Type: "none"},
		},
		{
			fixture: "showvminfo-machinereadable-7.0-hostonlynet-nics-fragment.txt",
			want:    map[string]string{"Forwarding(0)": "ssh,tcp,127.0.0.1,2222,,22"},
			absent:  []string{"nested-hw-virt", "VMState"},
			nic2:    NIC{Index: 2, Type: "hostonlynetwork", HostOnlyNetwork: "vagrantnet-vbox1", MAC: "080027FBC15B", CableConnected: true},
		},
		{
			fixture:   "showvminfo-machinereadable-constructed-dom0.txt",
			want:      map[string]string{"description": "labctl dom0 \"Xen\" VM\ncreated by vagrant up"},
			other:     []string{"Encryption:     disabled"},
			nested:    true,
			nestedKnw: true,
			state:     "running",
			nic2:      NIC{Index: 2, Type: "hostonly", HostOnlyAdapter: "vboxnet4", MAC: "080027EA7320", CableConnected: true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			mi, err := ParseMachineReadable(readFixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.want {
				if got, ok := mi.Get(k); !ok || got != v {
					t.Errorf("%q = %q (present %v), want %q", k, got, ok, v)
				}
			}
			for _, k := range tt.absent {
				if _, ok := mi.Get(k); ok {
					t.Errorf("%q present, want absent", k)
				}
			}
			if strings.Join(mi.Other, "|") != strings.Join(tt.other, "|") {
				t.Errorf("Other = %q, want %q", mi.Other, tt.other)
			}
			on, known := mi.NestedHWVirt()
			if on != tt.nested || known != tt.nestedKnw {
				t.Errorf("NestedHWVirt = %v,%v want %v,%v", on, known, tt.nested, tt.nestedKnw)
			}
			if mi.VMState() != tt.state {
				t.Errorf("VMState = %q, want %q", mi.VMState(), tt.state)
			}
			nic, ok := mi.NIC(2)
			if !ok || nic != tt.nic2 {
				t.Errorf("NIC(2) = %+v,%v want %+v", nic, ok, tt.nic2)
			}
		})
	}
}

func TestParseMachineReadableEdgeCases(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		key     string
		want    string
		wantErr bool
	}{
		{name: "unterminated multi-line value", in: "a=\"x\ny\n", wantErr: true},
		{name: "escaped quote at end of first line continues", in: "d=\"say \\\"\nnext\"\n", key: "d", want: "say \"\nnext"},
		{name: "escaped backslash before closing quote", in: "p=\"C:\\\\\"\n", key: "p", want: `C:\`},
		{name: "empty quoted value", in: "teleporteraddress=\"\"\n", key: "teleporteraddress", want: ""},
		{name: "crlf line endings", in: "VMState=\"running\"\r\nnic1=\"nat\"\r\n", key: "VMState", want: "running"},
		{name: "value with equals", in: "x=\"a=b\"\n", key: "x", want: "a=b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mi, err := ParseMachineReadable(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if got, ok := mi.Get(tt.key); !ok || got != tt.want {
				t.Fatalf("%q = %q (present %v), want %q", tt.key, got, ok, tt.want)
			}
		})
	}
}

func TestParseNICLines(t *testing.T) {
	tests := []struct {
		fixture string
		want    []NICLine // compared on the fields set here
	}{
		{
			fixture: "showvminfo-human-constructed-dom0-allow-all.txt",
			want: []NICLine{
				{Index: 1, MAC: "080027E5FA8F", AttachmentKind: "NAT", PromiscPolicy: "deny", CableConnected: true, Type: "82540EM"},
				{Index: 2, MAC: "080027EA7320", AttachmentKind: "Host-only Interface", AttachmentName: "vboxnet4", PromiscPolicy: "allow-all", CableConnected: true, Type: "82540EM"},
				{Index: 3, Disabled: true}, {Index: 4, Disabled: true}, {Index: 5, Disabled: true},
				{Index: 6, Disabled: true}, {Index: 7, Disabled: true}, {Index: 8, Disabled: true},
			},
		},
		{
			fixture: "showvminfo-human-constructed-dom0-deny.txt",
			want: []NICLine{
				{Index: 1, MAC: "080027E5FA8F", AttachmentKind: "NAT", PromiscPolicy: "deny", CableConnected: true, Type: "82540EM"},
				{Index: 2, MAC: "080027EA7320", AttachmentKind: "Host-only Interface", AttachmentName: "vboxnet4", PromiscPolicy: "deny", CableConnected: true, Type: "82540EM"},
				{Index: 3, Disabled: true}, {Index: 4, Disabled: true}, {Index: 5, Disabled: true},
				{Index: 6, Disabled: true}, {Index: 7, Disabled: true}, {Index: 8, Disabled: true},
			},
		},
		{
			fixture: "showvminfo-human-constructed-bridged-comma.txt",
			want: []NICLine{
				{Index: 1, MAC: "080027363FBE", AttachmentKind: "Bridged Interface", AttachmentName: "en0: Wi-Fi, AirPort", PromiscPolicy: "allow-vms", CableConnected: false, Type: "virtio"},
				{Index: 2, MAC: "080027FBC15B", AttachmentKind: "Host-only Network", AttachmentName: "vagrantnet-vbox1", PromiscPolicy: "allow-all", CableConnected: true, Type: "82540EM"},
				{Index: 3, Disabled: true},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got, err := ParseNICLines(readFixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d NIC lines, want %d: %+v", len(got), len(tt.want), got)
			}
			for i, w := range tt.want {
				g := got[i]
				if g.Index != w.Index || g.Disabled != w.Disabled || g.MAC != w.MAC || g.AttachmentKind != w.AttachmentKind ||
					g.AttachmentName != w.AttachmentName || g.PromiscPolicy != w.PromiscPolicy || g.CableConnected != w.CableConnected || g.Type != w.Type {
					t.Errorf("NIC %d = %+v\nwant %+v", w.Index, g, w)
				}
			}
			if n, ok := FindNICLine(got, 2); !ok || n.Index != 2 {
				t.Errorf("FindNICLine(2) = %+v, %v", n, ok)
			}
			if _, ok := FindNICLine(got, 9); ok {
				t.Error("FindNICLine(9) found a NIC that is not there")
			}
		})
	}
	// Trace value keeps its inner "file: none".
	got, _ := ParseNICLines(readFixture(t, "showvminfo-human-constructed-dom0-allow-all.txt"))
	if got[1].Fields["Trace"] != "off (file: none)" || got[1].Fields["Bandwidth group"] != "none" {
		t.Errorf("fields = %q", got[1].Fields)
	}
}

func TestParseHostOnlyIfs(t *testing.T) {
	tests := []struct {
		fixture string
		want    []HostOnlyIf
	}{
		{fixture: "list-hostonlyifs-two-ohai.txt", want: []HostOnlyIf{
			{Name: "vboxnet0", GUID: "786f6276-656e-4074-8000-0a0027000000", IPv4: netip.MustParseAddr("192.168.33.1"), NetworkMask: netip.MustParseAddr("255.255.255.0"),
				HardwareAddress: "0a:00:27:00:00:00", MediumType: "Ethernet", Wireless: "No", Status: "Down", VBoxNetworkName: "HostInterfaceNetworking-vboxnet0"},
			{Name: "vboxnet1", GUID: "786f6276-656e-4174-8000-0a0027000001", IPv4: netip.MustParseAddr("192.168.19.1"), NetworkMask: netip.MustParseAddr("255.255.255.0"),
				IPv6: netip.MustParseAddr("fe80::800:27ff:fe00:1"), IPv6Prefix: 64,
				HardwareAddress: "0a:00:27:00:00:01", MediumType: "Ethernet", Wireless: "No", Status: "Up", VBoxNetworkName: "HostInterfaceNetworking-vboxnet1"},
		}},
		{fixture: "list-hostonlyifs-two-docker-machine.txt", want: []HostOnlyIf{
			{Name: "vboxnet0", GUID: "786f6276-656e-4074-8000-0a0027000000", IPv4: netip.MustParseAddr("192.168.99.1"), NetworkMask: netip.MustParseAddr("255.255.255.0"),
				HardwareAddress: "0a:00:27:00:00:00", MediumType: "Ethernet", Status: "Up", VBoxNetworkName: "HostInterfaceNetworking-vboxnet0"},
			{Name: "vboxnet1", GUID: "786f6276-656e-4174-8000-0a0027000001", IPv4: netip.MustParseAddr("169.254.37.187"), NetworkMask: netip.MustParseAddr("255.255.255.0"),
				HardwareAddress: "0a:00:27:00:00:01", MediumType: "Ethernet", Status: "Up", VBoxNetworkName: "HostInterfaceNetworking-vboxnet1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got, err := ParseHostOnlyIfs(readFixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range tt.want {
				if got[i] != tt.want[i] {
					t.Errorf("[%d] = %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
	got, err := ParseHostOnlyIfs(readFixture(t, "list-hostonlyifs-constructed-lab-vboxnet4.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if p := got[1].Prefix(); p != netip.MustParsePrefix("192.168.77.1/24") {
		t.Errorf("vboxnet4 prefix = %v", p)
	}
	if _, err := ParseHostOnlyIfs("Name: x\nIPAddress: 300.1.1.1\n"); err == nil || !strings.Contains(err.Error(), `"x"`) {
		t.Errorf("bad address: err = %v, want one naming the interface", err)
	}
}

func TestParseHostOnlyNets(t *testing.T) {
	got, err := ParseHostOnlyNets(readFixture(t, "list-hostonlynets-7.0-vagrant.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := []HostOnlyNet{
		{Name: "vagrantnet-vbox1", GUID: "10000000-0000-0000-0000-000000000000", Enabled: true, NetworkMask: netip.MustParseAddr("255.255.255.0"),
			LowerIP: netip.MustParseAddr("192.168.61.0"), UpperIP: netip.MustParseAddr("192.168.61.0"), VBoxNetworkName: "hostonly-vagrantnet-vbox1"},
		{Name: "vagrantnet-vbox2", GUID: "20000000-0000-0000-0000-000000000000", Enabled: true, NetworkMask: netip.MustParseAddr("255.255.255.0"),
			LowerIP: netip.MustParseAddr("192.168.22.0"), UpperIP: netip.MustParseAddr("192.168.22.0"), VBoxNetworkName: "hostonly-vagrantnet-vbox2"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("[%d] = %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if p := got[0].Prefix(); p != netip.MustParsePrefix("192.168.61.0/24") {
		t.Errorf("prefix = %v", p)
	}
}

func TestParseDHCPServers(t *testing.T) {
	a := netip.MustParseAddr
	tests := []struct {
		fixture string
		want    []DHCPServer
	}{
		{fixture: "list-dhcpservers-6.1-two-vagrant.txt", want: []DHCPServer{
			{NetworkName: "HostInterfaceNetworking-vboxnet0", IP: a("192.168.56.100"), NetworkMask: a("255.255.255.0"), LowerIP: a("192.168.56.101"), UpperIP: a("192.168.56.254"), Enabled: true},
			{NetworkName: "HostInterfaceNetworking-vboxnet5", IP: a("172.28.128.2"), NetworkMask: a("255.255.255.0"), LowerIP: a("172.28.128.3"), UpperIP: a("172.28.128.254"), Enabled: true},
		}},
		{fixture: "list-dhcpservers-legacy-two-ohai.txt", want: []DHCPServer{
			{NetworkName: "HostInterfaceNetworking-vboxnet0", IP: a("192.168.56.100"), NetworkMask: a("255.255.255.0"), LowerIP: a("192.168.56.101"), UpperIP: a("192.168.56.254"), Enabled: true},
			{NetworkName: "HostInterfaceNetworking-vboxnet1", IP: a("192.168.19.2"), NetworkMask: a("255.255.255.0"), LowerIP: a("192.168.19.3"), UpperIP: a("192.168.19.254"), Enabled: true},
		}},
		{fixture: "list-dhcpservers-legacy-one-disabled-docker-machine.txt", want: []DHCPServer{
			{NetworkName: "HostInterfaceNetworking-vboxnet0", IP: a("192.168.99.6"), NetworkMask: a("255.255.255.0"), LowerIP: a("192.168.99.100"), UpperIP: a("192.168.99.254"), Enabled: true},
			{NetworkName: "HostInterfaceNetworking-vboxnet1", IP: a("192.168.99.7"), NetworkMask: a("255.255.255.0"), LowerIP: a("192.168.99.100"), UpperIP: a("192.168.99.254"), Enabled: false},
		}},
		{fixture: "list-dhcpservers-constructed-lab-vboxnet4-enabled.txt", want: []DHCPServer{
			{NetworkName: "HostInterfaceNetworking-vboxnet0", IP: a("192.168.56.100"), NetworkMask: a("255.255.255.0"), LowerIP: a("192.168.56.101"), UpperIP: a("192.168.56.254"), Enabled: true},
			{NetworkName: "HostInterfaceNetworking-vboxnet4", IP: a("192.168.77.100"), NetworkMask: a("255.255.255.0"), LowerIP: a("192.168.77.101"), UpperIP: a("192.168.77.254"), Enabled: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			got, err := ParseDHCPServers(readFixture(t, tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d, want %d: %+v", len(got), len(tt.want), got)
			}
			for i := range tt.want {
				if got[i] != tt.want[i] {
					t.Errorf("[%d] = %+v\nwant %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
	got, _ := ParseDHCPServers(readFixture(t, "list-dhcpservers-6.1-two-vagrant.txt"))
	if got[1].Interface() != "vboxnet5" || got[1].Prefix() != netip.MustParsePrefix("172.28.128.0/24") {
		t.Errorf("Interface/Prefix = %q %v", got[1].Interface(), got[1].Prefix())
	}
	if (DHCPServer{NetworkName: "NatNetwork"}).Interface() != "" {
		t.Error("a NAT network's server has no host-only interface")
	}
}

func TestNetworksConf(t *testing.T) {
	p := netip.MustParsePrefix
	lab := p("192.168.77.0/24")
	tests := []struct {
		name     string
		content  *string // nil: file absent
		fixture  string
		prefix   netip.Prefix
		allowed  bool
		line     int
		wantErr  bool
		nIgnored int
	}{
		{name: "absent: lab subnet refused", prefix: lab, allowed: false},
		{name: "absent: default range allowed", prefix: p("192.168.56.0/24"), allowed: true},
		{name: "absent: edge of default /21", prefix: p("192.168.63.0/24"), allowed: true},
		{name: "absent: just past default /21", prefix: p("192.168.64.0/24"), allowed: false},
		{name: "absent: IPv6 link-local", prefix: p("fe80::/64"), allowed: true},
		{name: "absent: IPv6 global", prefix: p("2001:db8::/64"), allowed: false},
		{name: "manual example allows 192.168/16", fixture: "networks-conf-manual-example.conf", prefix: lab, allowed: true, line: 1},
		{name: "manual example allows IPv6 range", fixture: "networks-conf-manual-example.conf", prefix: p("2001::/64"), allowed: true, line: 2},
		{name: "manual example: wider prefix than range", fixture: "networks-conf-manual-example.conf", prefix: p("2001::/48"), allowed: false},
		{name: "manual example: default range no longer implied", fixture: "networks-conf-manual-example.conf", prefix: p("172.16.0.0/24"), allowed: false},
		{name: "lab file", fixture: "networks-conf-constructed-lab.conf", prefix: lab, allowed: true, line: 3, nIgnored: 1},
		{name: "empty file allows nothing", content: ptr(""), prefix: p("192.168.56.0/24"), allowed: false},
		{name: "bad range", content: ptr("* 192.168.77.0/33\n"), wantErr: true},
		{name: "tabs and crlf", content: ptr("*\t192.168.77.0/24\r\n"), prefix: lab, allowed: true, line: 1},
		{name: "star glued to range is not a range line", content: ptr("*192.168.77.0/24\n"), prefix: lab, allowed: false, nIgnored: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var nc NetworksConf
			var err error
			switch {
			case tt.fixture != "":
				nc, err = ReadNetworksConf(filepath.Join("testdata", tt.fixture))
			case tt.content != nil:
				path := filepath.Join(t.TempDir(), "networks.conf")
				if werr := os.WriteFile(path, []byte(*tt.content), 0o644); werr != nil {
					t.Fatal(werr)
				}
				nc, err = ReadNetworksConf(path)
			default:
				nc, err = ReadNetworksConf(filepath.Join(t.TempDir(), "absent.conf"))
				if nc.Present {
					t.Fatal("absent file reported present")
				}
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			r, ok := nc.AllowsPrefix(tt.prefix)
			if ok != tt.allowed {
				t.Fatalf("AllowsPrefix(%v) = %v, want %v (ranges %v)", tt.prefix, ok, tt.allowed, nc.Effective())
			}
			if ok && r.Line != tt.line {
				t.Errorf("matched line %d, want %d", r.Line, tt.line)
			}
			if len(nc.Ignored) != tt.nIgnored {
				t.Errorf("ignored = %q, want %d", nc.Ignored, tt.nIgnored)
			}
		})
	}
	if got := FixLine(p("192.168.77.9/24")); got != "echo '* 192.168.77.0/24' | sudo tee -a /etc/vbox/networks.conf" {
		t.Errorf("FixLine = %q", got)
	}
	nc := NetworksConf{}
	if _, ok := nc.AllowsAddr(netip.MustParseAddr("192.168.57.1")); !ok {
		t.Error("default range should allow 192.168.57.1")
	}
}

func ptr(s string) *string { return &s }
