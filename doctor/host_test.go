package doctor

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/vmctl/vbox/vboxtest"
)

const vm = "labctl-dom0"

var lab = netip.MustParsePrefix("192.168.77.0/24")

func vboxFixture(t testing.TB, name string) string {
	return string(testenv.ReadFile(t, "..", "vmctl", "vbox", "testdata", name))
}

// fakeNet serves routes from a /proc/net/route file through the real
// reader, and a fixed interface list.
type fakeNet struct {
	routeFile string
	ifs       []Interface
}

func (f fakeNet) Interfaces(context.Context) ([]Interface, error) {
	if f.ifs != nil {
		return f.ifs, nil
	}
	// The laptop of the constructed route files.
	return []Interface{
		{Name: "lo", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}},
		{Name: "wlan0", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.1.23/24")}},
		{Name: "vboxnet4", Up: true, Addrs: []netip.Prefix{netip.MustParsePrefix("192.168.77.1/24")}},
	}, nil
}
func (f fakeNet) Routes(ctx context.Context) ([]Route, error) {
	return SystemNet{ProcNetRoute: filepath.Join("testdata", f.routeFile)}.Routes(ctx)
}

// scenario is a healthy lab that each case breaks in one place.
type scenario struct {
	fake      *vboxtest.Fake
	conf      string // networks.conf content; "" = absent
	routeFile string
}

func healthy(t *testing.T) *scenario {
	return &scenario{
		fake: &vboxtest.Fake{
			VersionOut:      vboxFixture(t, "version-7.0.14-constructed.txt"),
			MachineReadable: map[string]string{vm: vboxFixture(t, "showvminfo-machinereadable-constructed-dom0.txt")},
			Human:           map[string]string{vm: vboxFixture(t, "showvminfo-human-constructed-dom0-allow-all.txt")},
			HostOnlyIfsOut:  vboxFixture(t, "list-hostonlyifs-constructed-lab-vboxnet4.txt"),
			HostOnlyNetsOut: vboxFixture(t, "list-hostonlynets-7.0-vagrant.txt"),
			DHCPServersOut:  vboxFixture(t, "list-dhcpservers-6.1-two-vagrant.txt"),
		},
		conf:      "* 192.168.56.0/21\n* 192.168.77.0/24\n",
		routeFile: "proc-net-route-constructed-laptop-lab.txt",
	}
}

func (s *scenario) run(t *testing.T, cfg HostConfig) []Finding {
	t.Helper()
	confPath := filepath.Join(t.TempDir(), "networks.conf")
	if s.conf != "" {
		if err := os.WriteFile(confPath, []byte(s.conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if cfg.VM == "" {
		cfg.VM = vm
	}
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = lab
	}
	cfg.NetworksConf = confPath
	fs, err := CheckHost(context.Background(), HostDeps{VBox: s.fake, Net: fakeNet{routeFile: s.routeFile}}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

func TestCheckHostHealthy(t *testing.T) {
	fs := healthy(t).run(t, HostConfig{})
	want := []string{CheckVBoxVersion, CheckNetworksConf, CheckVM, CheckNestedHWVirt, CheckHostOnlyAdapter,
		CheckPromiscPolicy, CheckHostOnlyAddress, CheckVBoxDHCP, CheckRoute}
	if len(fs) != len(want) {
		t.Fatalf("got %d findings, want %d: %+v", len(fs), len(want), fs)
	}
	for i, f := range fs {
		if f.Check != want[i] || f.Status != StatusOK || f.Layer != LayerHost || f.Fix != "" {
			t.Errorf("finding %d = %+v, want %s ok", i, f, want[i])
		}
	}
	if Worst(fs) != StatusOK {
		t.Errorf("Worst = %s", Worst(fs))
	}
	if f, _ := Find(fs, CheckNetworksConf); !strings.Contains(f.Detail, "line 2") {
		t.Errorf("networks-conf detail %q should name the allowing line", f.Detail)
	}
	if f, _ := Find(fs, CheckRoute); !strings.Contains(f.Detail, "vboxnet4") {
		t.Errorf("route detail %q", f.Detail)
	}
}

func replace(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("fixture lacks %q", old)
	}
	return strings.Replace(s, old, new, 1)
}

// TestCheckHostFaults injects one fault per case and expects its finding
// and exact fix.
func TestCheckHostFaults(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(t *testing.T, s *scenario)
		check  string
		status Status
		detail string // substring
		fix    string // exact
		absent []string
		also   []string // other checks the same fault legitimately affects
	}{
		{
			name: "VBoxManage fails",
			break_: func(t *testing.T, s *scenario) {
				s.fake.Err = map[string]error{"Version": errors.New("exec: VBoxManage: not found")}
			},
			check: CheckVBoxVersion, status: StatusFail, detail: "not found",
			fix:    "VBoxManage --version  # install VirtualBox >= 6.1 (or load its kernel module: sudo /sbin/vboxconfig) until this prints a version",
			absent: []string{CheckNetworksConf, CheckVM, CheckNestedHWVirt, CheckPromiscPolicy, CheckVBoxDHCP},
		},
		{
			name:   "networks.conf absent on 7.0",
			break_: func(t *testing.T, s *scenario) { s.conf = "" },
			check:  CheckNetworksConf, status: StatusFail, detail: "192.168.56.0/21",
			fix: "echo '* 192.168.77.0/24' | sudo tee -a /etc/vbox/networks.conf",
		},
		{
			name:   "networks.conf without the lab subnet",
			break_: func(t *testing.T, s *scenario) { s.conf = "* 10.0.0.0/8\n" },
			check:  CheckNetworksConf, status: StatusFail, detail: "10.0.0.0/8",
			fix: "echo '* 192.168.77.0/24' | sudo tee -a /etc/vbox/networks.conf",
		},
		{
			name:   "networks.conf unparsable",
			break_: func(t *testing.T, s *scenario) { s.conf = "* 192.168.77.0/99\n" },
			check:  CheckNetworksConf, status: StatusFail, detail: "line 1",
			fix: "echo '* 192.168.77.0/24' | sudo tee -a /etc/vbox/networks.conf",
		},
		{
			name: "old VirtualBox: no networks.conf needed, but too old for nested VT-x",
			break_: func(t *testing.T, s *scenario) {
				s.fake.VersionOut = vboxFixture(t, "version-6.0.12-vboxdrv-warning.txt")
				s.conf = ""
			},
			check: CheckVBoxVersion, status: StatusWarn, detail: "6.0.12r133076", fix: "upgrade VirtualBox to 6.1 or later",
		},
		{
			name:   "VM missing",
			break_: func(t *testing.T, s *scenario) { s.fake.MachineReadable = nil },
			check:  CheckVM, status: StatusFail, detail: `"labctl-dom0"`, fix: "vagrant up",
			absent: []string{CheckNestedHWVirt, CheckHostOnlyAdapter, CheckPromiscPolicy},
		},
		{
			name: "nested-hw-virt off while running",
			break_: func(t *testing.T, s *scenario) {
				s.fake.MachineReadable[vm] = replace(t, s.fake.MachineReadable[vm], `nested-hw-virt="on"`, `nested-hw-virt="off"`)
			},
			check: CheckNestedHWVirt, status: StatusFail, detail: "off",
			fix: "vagrant halt && VBoxManage modifyvm labctl-dom0 --nested-hw-virt on && vagrant up",
		},
		{
			name: "nested-hw-virt not reported",
			break_: func(t *testing.T, s *scenario) {
				s.fake.MachineReadable[vm] = replace(t, s.fake.MachineReadable[vm], "nested-hw-virt=\"on\"\n", "")
			},
			check: CheckNestedHWVirt, status: StatusWarn, detail: "no nested-hw-virt", fix: "upgrade VirtualBox to 6.1 or later",
		},
		{
			name: "promiscuous policy deny while running",
			break_: func(t *testing.T, s *scenario) {
				s.fake.Human[vm] = vboxFixture(t, "showvminfo-human-constructed-dom0-deny.txt")
			},
			check: CheckPromiscPolicy, status: StatusFail, detail: "Promisc Policy: deny",
			fix: "VBoxManage controlvm labctl-dom0 nicpromisc2 allow-all",
		},
		{
			name: "promiscuous policy deny while powered off",
			break_: func(t *testing.T, s *scenario) {
				s.fake.Human[vm] = vboxFixture(t, "showvminfo-human-constructed-dom0-deny.txt")
				s.fake.MachineReadable[vm] = replace(t, s.fake.MachineReadable[vm], `VMState="running"`, `VMState="poweroff"`)
			},
			check: CheckPromiscPolicy, status: StatusFail, detail: "deny",
			fix:  "VBoxManage modifyvm labctl-dom0 --nicpromisc2 allow-all",
			also: []string{CheckVM},
		},
		{
			name: "VM powered off",
			break_: func(t *testing.T, s *scenario) {
				s.fake.MachineReadable[vm] = replace(t, s.fake.MachineReadable[vm], `VMState="running"`, `VMState="poweroff"`)
			},
			check: CheckVM, status: StatusWarn, detail: "poweroff", fix: "vagrant up",
		},
		{
			name: "adapter 2 is NAT",
			break_: func(t *testing.T, s *scenario) {
				s.fake.MachineReadable[vm] = replace(t, s.fake.MachineReadable[vm], `nic2="hostonly"`, `nic2="nat"`)
			},
			check: CheckHostOnlyAdapter, status: StatusFail, detail: "adapter 2 is nat",
			fix: "vagrant halt && VBoxManage modifyvm labctl-dom0 --nic2 hostonly --hostonlyadapter2 vboxnet4 && vagrant up",
		},
		{
			name: "host-only interface gone",
			break_: func(t *testing.T, s *scenario) {
				s.fake.HostOnlyIfsOut = vboxFixture(t, "list-hostonlyifs-two-ohai.txt")
			},
			check: CheckHostOnlyAddress, status: StatusFail, detail: `"vboxnet4"`, fix: "vagrant reload",
		},
		{
			name: "host-only interface on the wrong subnet",
			break_: func(t *testing.T, s *scenario) {
				s.fake.HostOnlyIfsOut = replace(t, s.fake.HostOnlyIfsOut, "IPAddress:       192.168.77.1", "IPAddress:       192.168.56.1")
			},
			check: CheckHostOnlyAddress, status: StatusFail, detail: "192.168.56.1/24",
			fix: "VBoxManage hostonlyif ipconfig vboxnet4 --ip 192.168.77.1 --netmask 255.255.255.0",
		},
		{
			name: "host-only interface holds another lab address",
			break_: func(t *testing.T, s *scenario) {
				s.fake.HostOnlyIfsOut = replace(t, s.fake.HostOnlyIfsOut, "IPAddress:       192.168.77.1", "IPAddress:       192.168.77.9")
			},
			check: CheckHostOnlyAddress, status: StatusWarn, detail: "192.168.77.9/24",
			fix: "VBoxManage hostonlyif ipconfig vboxnet4 --ip 192.168.77.1 --netmask 255.255.255.0",
		},
		{
			name: "VirtualBox DHCP server enabled on vboxnet4",
			break_: func(t *testing.T, s *scenario) {
				s.fake.DHCPServersOut = vboxFixture(t, "list-dhcpservers-constructed-lab-vboxnet4-enabled.txt")
			},
			check: CheckVBoxDHCP, status: StatusFail, detail: "HostInterfaceNetworking-vboxnet4 is enabled",
			fix: "VBoxManage dhcpserver modify --network=HostInterfaceNetworking-vboxnet4 --disable",
		},
		{
			name: "stale DHCP server of another name serving the lab subnet",
			break_: func(t *testing.T, s *scenario) {
				s.fake.DHCPServersOut = "NetworkName:    HostInterfaceNetworking-vboxnet9\nIP:             192.168.77.100\nNetworkMask:    255.255.255.0\nlowerIPAddress: 192.168.77.101\nupperIPAddress: 192.168.77.254\nEnabled:        Yes\n"
			},
			check: CheckVBoxDHCP, status: StatusFail, detail: "vboxnet9",
			fix: "VBoxManage dhcpserver modify --network=HostInterfaceNetworking-vboxnet9 --disable",
		},
		{
			name: "DHCP server present but disabled",
			break_: func(t *testing.T, s *scenario) {
				s.fake.DHCPServersOut = replace(t, vboxFixture(t, "list-dhcpservers-constructed-lab-vboxnet4-enabled.txt"),
					"NetworkMask:    255.255.255.0\nEnabled:        Yes\nGlobal Configuration:\n    minLeaseTime:     default\n    defaultLeaseTime: default\n    maxLeaseTime:     default\n    Forced options:   None\n    Suppressed opts.: None\n        1/legacy: 255.255.255.0\nGroups:               None\nIndividual Configs:   None\n\nNetworkName:    HostInterfaceNetworking-vboxnet4",
					"NetworkMask:    255.255.255.0\nEnabled:        Yes\n\nNetworkName:    HostInterfaceNetworking-vboxnet4")
				s.fake.DHCPServersOut = strings.Replace(s.fake.DHCPServersOut, "192.168.77.254\nNetworkMask:    255.255.255.0\nEnabled:        Yes", "192.168.77.254\nNetworkMask:    255.255.255.0\nEnabled:        No", 1)
			},
			check: CheckVBoxDHCP, status: StatusOK, detail: "disabled",
		},
		{
			name:   "a VPN route wins inside the lab subnet",
			break_: func(t *testing.T, s *scenario) { s.routeFile = "proc-net-route-constructed-vpn-conflict.txt" },
			check:  CheckRoute, status: StatusFail, detail: "via tun0 (192.168.77.0/25)",
			fix: "LABCTL_SUBNET=<a free /24, e.g. 10.77.0.0/24> vagrant reload",
		},
		{
			name:   "no route to the lab: only the default gateway",
			break_: func(t *testing.T, s *scenario) { s.routeFile = "proc-net-route-constructed-no-lab-route.txt" },
			check:  CheckRoute, status: StatusFail, detail: "gateway 192.168.1.1 on wlan0",
			fix: "vagrant reload",
		},
		{
			name:   "lab route not up",
			break_: func(t *testing.T, s *scenario) { s.routeFile = "proc-net-route-constructed-lab-route-down.txt" },
			check:  CheckRoute, status: StatusFail, detail: "not vboxnet4",
			fix: "vagrant reload",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := healthy(t)
			tt.break_(t, s)
			fs := s.run(t, HostConfig{})
			f, ok := Find(fs, tt.check)
			if !ok {
				t.Fatalf("no %s finding in %+v", tt.check, fs)
			}
			if f.Status != tt.status || !strings.Contains(f.Detail, tt.detail) || f.Fix != tt.fix {
				t.Fatalf("%s = %+v\nwant status %s, detail ~%q, fix %q", tt.check, f, tt.status, tt.detail, tt.fix)
			}
			if f.Status != StatusOK && f.Meaning == "" {
				t.Errorf("%s has no meaning", tt.check)
			}
			// Exactly the injected fault shows (other checks stay ok),
			// except where one fault hides checks that need its input.
			also := strings.Join(tt.also, " ")
			for _, o := range fs {
				if o.Check != tt.check && o.Status != StatusOK && !strings.Contains(also, o.Check) {
					t.Errorf("unrelated finding %+v", o)
				}
			}
			for _, a := range tt.absent {
				if _, ok := Find(fs, a); ok {
					t.Errorf("%s reported although its input is missing", a)
				}
			}
		})
	}
}

// TestCheckHostRecordedVMs runs the checks on the recorded public outputs
// of VMs that were never set up for the lab: every lab-specific check fails.
func TestCheckHostRecordedVMs(t *testing.T) {
	t.Run("7.0 VM without nested virt or host-only adapter", func(t *testing.T) {
		s := healthy(t)
		name := "manjaro-gnome-x64-full-clean"
		s.fake.MachineReadable = map[string]string{name: vboxFixture(t, "showvminfo-machinereadable-7.0-encryption-line.txt")}
		s.fake.Human = map[string]string{name: "NIC 1:  MAC: 08002744D7F6, Attachment: NAT, Cable connected: on, Trace: off (file: none), Type: 82540EM, Reported speed: 0 Mbps, Boot priority: 0, Promisc Policy: deny, Bandwidth group: none\nNIC 2:  disabled\n"}
		s.fake.HostOnlyIfsOut = vboxFixture(t, "list-hostonlyifs-two-ohai.txt")
		s.fake.DHCPServersOut = vboxFixture(t, "list-dhcpservers-legacy-two-ohai.txt")
		s.routeFile = "proc-net-route-recorded-debian12-container.txt"
		fs := s.run(t, HostConfig{VM: name})
		want := map[string]struct {
			status Status
			fix    string
		}{
			CheckVM:              {StatusWarn, "vagrant up"},
			CheckNestedHWVirt:    {StatusFail, "VBoxManage modifyvm manjaro-gnome-x64-full-clean --nested-hw-virt on"},
			CheckHostOnlyAdapter: {StatusFail, "VBoxManage modifyvm manjaro-gnome-x64-full-clean --nic2 hostonly --hostonlyadapter2 vboxnetN"},
			CheckPromiscPolicy:   {StatusFail, ""},
			CheckHostOnlyAddress: {StatusFail, "vagrant up"},
			CheckVBoxDHCP:        {StatusOK, ""},
			CheckRoute:           {StatusFail, "vagrant reload"},
		}
		for check, w := range want {
			f, ok := Find(fs, check)
			if !ok || f.Status != w.status || f.Fix != w.fix {
				t.Errorf("%s = %+v (found %v), want %s fix %q", check, f, ok, w.status, w.fix)
			}
		}
	})
	t.Run("7.x host-only network on another subnet", func(t *testing.T) {
		s := healthy(t)
		mr := "VMState=\"running\"\nnested-hw-virt=\"on\"\n" + vboxFixture(t, "showvminfo-machinereadable-7.0-hostonlynet-nics-fragment.txt")
		s.fake.MachineReadable[vm] = mr
		s.fake.Human[vm] = vboxFixture(t, "showvminfo-human-constructed-bridged-comma.txt")
		fs := s.run(t, HostConfig{})
		f, _ := Find(fs, CheckHostOnlyAdapter)
		if f.Status != StatusOK || !strings.Contains(f.Detail, "vagrantnet-vbox1") {
			t.Errorf("adapter = %+v", f)
		}
		f, _ = Find(fs, CheckHostOnlyAddress)
		if f.Status != StatusFail || !strings.Contains(f.Detail, "192.168.61.0/24") ||
			f.Fix != "VBoxManage hostonlynet modify --name vagrantnet-vbox1 --netmask 255.255.255.0 --lower-ip 192.168.77.0 --upper-ip 192.168.77.0" {
			t.Errorf("address = %+v", f)
		}
	})
}

func TestCheckHostConfig(t *testing.T) {
	s := healthy(t)
	deps := HostDeps{VBox: s.fake, Net: fakeNet{routeFile: s.routeFile}}
	for _, cfg := range []HostConfig{{Subnet: lab}, {VM: vm}, {VM: vm, Subnet: netip.MustParsePrefix("fd00::/64")}} {
		if _, err := CheckHost(context.Background(), deps, cfg); err == nil {
			t.Errorf("config %+v accepted", cfg)
		}
	}
	if _, err := CheckHost(context.Background(), HostDeps{Net: deps.Net}, HostConfig{VM: vm, Subnet: lab}); err == nil {
		t.Error("missing VBox accepted")
	}
	// A VM name with a space is quoted in the fix.
	s.fake.MachineReadable["my dom0"] = replace(t, s.fake.MachineReadable[vm], `nested-hw-virt="on"`, `nested-hw-virt="off"`)
	s.fake.Human["my dom0"] = s.fake.Human[vm]
	fs := s.run(t, HostConfig{VM: "my dom0"})
	if f, _ := Find(fs, CheckNestedHWVirt); !strings.Contains(f.Fix, "modifyvm 'my dom0' --nested-hw-virt on") {
		t.Errorf("fix %q does not quote the VM name", f.Fix)
	}
}

func TestFindingJSON(t *testing.T) {
	b, err := json.Marshal(Finding{Layer: LayerHost, Check: CheckPromiscPolicy, Status: StatusFail, Detail: "d", Meaning: "m", Fix: "f"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"layer":"host","check":"promisc-policy","status":"fail","detail":"d","meaning":"m","fix":"f"}`
	if string(b) != want {
		t.Fatalf("got %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(Finding{Layer: LayerGuest, Check: "x", Status: StatusOK, Detail: "d"})
	if strings.Contains(string(b), "fix") || strings.Contains(string(b), "meaning") {
		t.Fatalf("empty fix/meaning not omitted: %s", b)
	}
}

func TestWorst(t *testing.T) {
	tests := []struct {
		in   []Status
		want Status
	}{
		{nil, StatusOK},
		{[]Status{StatusOK, StatusWarn}, StatusWarn},
		{[]Status{StatusFail, StatusWarn, StatusOK}, StatusFail},
	}
	for _, tt := range tests {
		var fs []Finding
		for _, s := range tt.in {
			fs = append(fs, Finding{Status: s})
		}
		if got := Worst(fs); got != tt.want {
			t.Errorf("Worst(%v) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
