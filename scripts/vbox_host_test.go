package scripts

// Tests of the Vagrantfile's host side (vbox_host.rb) against a stateful
// fake VBoxManage (testdata/fake-vboxmanage.rb) that speaks the recorded
// real output formats: the DHCP race on a fresh VirtualBox, VBoxManage on
// Windows, networks.conf only where Vagrant enforces it, and the
// VirtualBox/Vagrant version gate.

import (
	"encoding/json"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/hashicorp/go-version"
	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/vmctl/vbox"
)

type fakeIf struct {
	Name    string `json:"name"`
	IP      string `json:"ip"`
	Mask    string `json:"mask"`
	IPv6    string `json:"ipv6,omitempty"`
	IPv6Len int    `json:"ipv6len,omitempty"`
	Status  string `json:"status,omitempty"`
}

type fakeDHCP struct {
	Network string `json:"network"`
	IP      string `json:"ip"`
	Lower   string `json:"lower"`
	Upper   string `json:"upper"`
	Mask    string `json:"mask"`
	Enabled bool   `json:"enabled"`
}

type fakeNet struct {
	Name    string `json:"name"`
	GUID    string `json:"guid"`
	Enabled bool   `json:"enabled"`
	Mask    string `json:"mask"`
	Lower   string `json:"lower"`
	Upper   string `json:"upper"`
}

type fakeState struct {
	Version      string                       `json:"version"`
	HostOnlyIfs  []fakeIf                     `json:"hostonlyifs"`
	DHCPServers  []fakeDHCP                   `json:"dhcpservers"`
	HostOnlyNets []fakeNet                    `json:"hostonlynets"`
	VMs          map[string]map[string]string `json:"vms,omitempty"`
}

// VirtualBox's own DHCP server of a fresh install (hashicorp/vagrant
// plugins/providers/virtualbox/action/network.rb @ v2.4.9,
// DEFAULT_DHCP_SERVER_FROM_VBOX_INSTALL; the first block of the recorded
// list-dhcpservers-6.1-two-vagrant.txt).
var freshDHCP = fakeDHCP{Network: "HostInterfaceNetworking-vboxnet0", IP: "192.168.56.100",
	Lower: "192.168.56.101", Upper: "192.168.56.254", Mask: "255.255.255.0", Enabled: true}

const labSubnet = "192.168.77.0/24"

type fakeVBox struct {
	dir string
	t   *testing.T
}

// newFakeVBox installs the fake as dir/name (VBoxManage or VBoxManage.exe)
// with the given state.
func newFakeVBox(t *testing.T, dir, name string, st fakeState) *fakeVBox {
	t.Helper()
	src, err := os.ReadFile(filepath.Join("testdata", "fake-vboxmanage.rb"))
	if err != nil {
		t.Fatal(err)
	}
	// An absolute interpreter: some tests run it with a PATH that has none.
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		t.Fatal(err)
	}
	src = append([]byte("#!"+ruby+"\n"), src[strings.IndexByte(string(src), '\n')+1:]...)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), src, 0o755); err != nil {
		t.Fatal(err)
	}
	f := &fakeVBox{dir: dir, t: t}
	f.write(st)
	return f
}

func (f *fakeVBox) write(st fakeState) {
	b, err := json.Marshal(st)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, "state.json"), b, 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeVBox) state() fakeState {
	var st fakeState
	b, err := os.ReadFile(filepath.Join(f.dir, "state.json"))
	if err != nil {
		f.t.Fatal(err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		f.t.Fatal(err)
	}
	return st
}

func (f *fakeVBox) calls() []string {
	b, _ := os.ReadFile(filepath.Join(f.dir, "calls.log"))
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// vbm runs the fake as VBoxManage would be run.
func (f *fakeVBox) vbm(args ...string) string {
	f.t.Helper()
	out, err := exec.Command(filepath.Join(f.dir, "VBoxManage"), args...).Output()
	if err != nil {
		f.t.Fatalf("fake VBoxManage %v: %v", args, err)
	}
	return string(out)
}

// TestFakeVBoxManageSpeaksRecordedFormats: the fake's `list` outputs are
// byte for byte the recorded real ones for the same state, so the Ruby
// parsers are tested against what VirtualBox prints.
func TestFakeVBoxManageSpeaksRecordedFormats(t *testing.T) {
	testenv.RequireTool(t, "ruby")
	f := newFakeVBox(t, t.TempDir(), "VBoxManage", fakeState{
		Version: "7.0.14r161095",
		HostOnlyIfs: []fakeIf{
			{Name: "vboxnet0", IP: "192.168.33.1", Mask: "255.255.255.0", Status: "Down"},
			{Name: "vboxnet1", IP: "192.168.19.1", Mask: "255.255.255.0", IPv6: "fe80::800:27ff:fe00:1", IPv6Len: 64, Status: "Up"},
		},
		DHCPServers: []fakeDHCP{freshDHCP, {Network: "HostInterfaceNetworking-vboxnet5", IP: "172.28.128.2",
			Lower: "172.28.128.3", Upper: "172.28.128.254", Mask: "255.255.255.0", Enabled: true}},
		HostOnlyNets: []fakeNet{
			{Name: "vagrantnet-vbox1", GUID: "10000000-0000-0000-0000-000000000000", Enabled: true, Mask: "255.255.255.0", Lower: "192.168.61.0", Upper: "192.168.61.0"},
			{Name: "vagrantnet-vbox2", GUID: "20000000-0000-0000-0000-000000000000", Enabled: true, Mask: "255.255.255.0", Lower: "192.168.22.0", Upper: "192.168.22.0"},
		},
	})
	for list, fixture := range map[string]string{
		"hostonlyifs":  "list-hostonlyifs-two-ohai.txt",
		"dhcpservers":  "list-dhcpservers-6.1-two-vagrant.txt",
		"hostonlynets": "list-hostonlynets-7.0-vagrant.txt",
	} {
		want := string(testenv.ReadFile(t, "..", "vmctl", "vbox", "testdata", fixture))
		if got := f.vbm("list", list); got != want {
			t.Errorf("list %s differs from %s:\n got %q\nwant %q", list, fixture, got, want)
		}
	}
}

// vboxStartsDHCP is what VirtualBox does when the VM starts: it starts the
// DHCP server of the network the adapter is attached to, if one is enabled.
// The adapter is attached where Vagrant attaches it (action/network.rb
// hostonly_find_matching_network: the first interface whose network
// address is the lab's; none: create_host_only_network creates one with
// `hostonlyif create` + `hostonlyif ipconfig NAME --ip .1 --netmask`).
// It returns the enabled server's name, or "".
func vboxStartsDHCP(t *testing.T, f *fakeVBox) string {
	t.Helper()
	subnet := netip.MustParsePrefix(labSubnet)
	ifs, err := vbox.ParseHostOnlyIfs(f.vbm("list", "hostonlyifs"))
	if err != nil {
		t.Fatal(err)
	}
	netName := ""
	for _, i := range ifs {
		if p := i.Prefix(); p.IsValid() && p.Masked() == subnet {
			netName = i.VBoxNetworkName
			break
		}
	}
	if netName == "" {
		out := f.vbm("hostonlyif", "create")
		m := regexp.MustCompile(`(?m)^Interface '(.+?)' was successfully created$`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("hostonlyif create: %q", out)
		}
		f.vbm("hostonlyif", "ipconfig", m[1], "--ip", "192.168.77.1", "--netmask", "255.255.255.0")
		netName = vbox.HostOnlyNetworkPrefix + m[1]
	}
	srvs, err := vbox.ParseDHCPServers(f.vbm("list", "dhcpservers"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range srvs {
		if s.NetworkName == netName && s.Enabled {
			return s.NetworkName
		}
	}
	return ""
}

func vagrantVersion(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("vagrant", "--version").Output()
	if err != nil {
		t.Fatalf("vagrant --version: %v", err)
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "Vagrant ")
}

// TestVagrantUpNoDHCPRace drives the real Vagrantfile's `vagrant up` until
// it fails on the (absent) box, then lets "VirtualBox" start the VM on the
// interface Vagrant would pick: no VirtualBox DHCP server may come up with
// it. On a fresh install the before-up trigger has nothing to match yet and
// Vagrant's interface inherits the enabled default server.
func TestVagrantUpNoDHCPRace(t *testing.T) {
	testenv.RequireTool(t, "vagrant", "ruby")
	tests := []struct {
		name string
		st   fakeState
		// the servers' Enabled afterwards, by network name
		wantEnabled map[string]bool
	}{
		{
			name:        "fresh install",
			st:          fakeState{DHCPServers: []fakeDHCP{freshDHCP}},
			wantEnabled: map[string]bool{"HostInterfaceNetworking-vboxnet0": false},
		},
		{
			// vboxnet0 serves another VM: its server is not the lab's to touch.
			name: "vboxnet0 in use elsewhere",
			st: fakeState{HostOnlyIfs: []fakeIf{{Name: "vboxnet0", IP: "192.168.56.1", Mask: "255.255.255.0", Status: "Up"}},
				DHCPServers: []fakeDHCP{freshDHCP}},
			wantEnabled: map[string]bool{"HostInterfaceNetworking-vboxnet0": true},
		},
		{
			name: "lab interface with its own server",
			st: fakeState{HostOnlyIfs: []fakeIf{{Name: "vboxnet4", IP: "192.168.77.1", Mask: "255.255.255.0"}},
				DHCPServers: []fakeDHCP{freshDHCP, {Network: "HostInterfaceNetworking-vboxnet4", IP: "192.168.77.100",
					Lower: "192.168.77.101", Upper: "192.168.77.254", Mask: "255.255.255.0", Enabled: true}}},
			wantEnabled: map[string]bool{"HostInterfaceNetworking-vboxnet0": true, "HostInterfaceNetworking-vboxnet4": false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := project(t)
			tt.st.Version = "7.0.14r161095"
			f := newFakeVBox(t, t.TempDir(), "VBoxManage", tt.st)
			conf := filepath.Join(t.TempDir(), "networks.conf")
			if err := os.WriteFile(conf, []byte("* 192.168.77.0/24\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			bin := filepath.Join(t.TempDir(), "labctl")
			if err := os.WriteFile(bin, []byte("stand-in\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			env := append(vagrantEnv(t),
				"PATH="+f.dir+string(os.PathListSeparator)+os.Getenv("PATH"),
				"LABCTL_VBOX_NETWORKS_CONF="+conf,
				"LABCTL_BINARY="+bin, // the build trigger copies it: no Go build here
				"LABCTL_BOX=labctl-test/no-such-box")
			out, err := run(t, dir, env, "vagrant", "up", "--provider", "virtualbox")
			if err == nil {
				t.Fatalf("vagrant up succeeded without a box:\n%s", out)
			}
			if !strings.Contains(out, "no-such-box") {
				t.Fatalf("vagrant stopped before the box, not on it:\n%s", out)
			}
			if srv := vboxStartsDHCP(t, f); srv != "" {
				t.Fatalf("the VM starts with VirtualBox DHCP server %s on the lab network (calls: %q)\n%s", srv, f.calls(), out)
			}
			got := map[string]bool{}
			for _, s := range f.state().DHCPServers {
				got[s.Network] = s.Enabled
			}
			for n, want := range tt.wantEnabled {
				if got[n] != want {
					t.Errorf("server %s enabled=%v, want %v", n, got[n], want)
				}
			}
		})
	}
}

// TestVagrantVersionGate: a VirtualBox that this Vagrant cannot drive stops
// `vagrant up` with labctl's message, naming both versions and the Vagrant
// to install, before Vagrant's own refusal (which names neither) and before
// anything but `VBoxManage --version` runs.
func TestVagrantVersionGate(t *testing.T) {
	testenv.RequireTool(t, "vagrant", "ruby")
	have := vagrantVersion(t)
	for _, tt := range []struct{ vbox, min string }{
		{"7.1.4r165100", "2.4.2"},
		{"7.2.0r170228", "2.4.9"},
	} {
		t.Run(tt.vbox, func(t *testing.T) {
			if version.Must(version.NewVersion(have)).GreaterThanOrEqual(version.Must(version.NewVersion(tt.min))) {
				t.Skipf("installed Vagrant %s supports VirtualBox %s", have, tt.vbox)
			}
			dir := project(t)
			f := newFakeVBox(t, t.TempDir(), "VBoxManage", fakeState{Version: tt.vbox, DHCPServers: []fakeDHCP{freshDHCP}})
			env := append(vagrantEnv(t), "PATH="+f.dir+string(os.PathListSeparator)+os.Getenv("PATH"),
				"LABCTL_BOX=labctl-test/no-such-box")
			out, err := run(t, dir, env, "vagrant", "up", "--provider", "virtualbox")
			if err == nil {
				t.Fatalf("vagrant up succeeded:\n%s", out)
			}
			vs := strings.SplitN(tt.vbox, "r", 2)[0]
			for _, want := range []string{"VirtualBox " + vs + " needs Vagrant >= " + tt.min, "this is Vagrant " + have,
				"install Vagrant " + tt.min + " or later"} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, "not supported by this version of Vagrant") {
				t.Errorf("Vagrant's own refusal came first:\n%s", out)
			}
			for _, c := range f.calls() {
				if c != "--version" {
					t.Errorf("VBoxManage %s ran before the gate stopped vagrant", c)
				}
			}
		})
	}
}

// TestVersionGateTable: the minimum Vagrant per VirtualBox, as
// hashicorp/vagrant's CHANGELOG states it (see vbox_host.rb).
func TestVersionGateTable(t *testing.T) {
	testenv.RequireTool(t, "ruby")
	tests := []struct {
		vbox, vagrant, os string
		want              string // "" = passes
	}{
		{"7.1.4r165100", "2.4.1", "linux-gnu", "needs Vagrant >= 2.4.2; this is Vagrant 2.4.1"},
		{"7.1.4r165100", "2.4.2", "linux-gnu", ""},
		{"7.2.0r170228", "2.4.8", "mingw32", "needs Vagrant >= 2.4.9; this is Vagrant 2.4.8"},
		{"7.2.0r170228", "2.4.9", "darwin23", ""},
		{"7.0.14r161095", "2.3.1", "linux-gnu", "needs Vagrant >= 2.3.2"},
		{"7.0.14r161095", "2.3.2", "linux-gnu", ""},
		{"7.0.14r161095", "2.3.2", "darwin22", "needs Vagrant >= 2.3.3"},
		{"6.1.50r161033", "2.2.6", "linux-gnu", "needs Vagrant >= 2.2.7"},
		{"7.0.16_Ubuntur162802", "2.4.0.dev", "linux-gnu", ""},
		// Newer than labctl knows: Vagrant's own check decides.
		{"8.0.0r170000", "2.4.9", "linux-gnu", ""},
	}
	for _, tt := range tests {
		t.Run(tt.vbox+" "+tt.vagrant+" "+tt.os, func(t *testing.T) {
			f := newFakeVBox(t, t.TempDir(), "VBoxManage", fakeState{Version: tt.vbox})
			conf := filepath.Join(t.TempDir(), "networks.conf")
			os.WriteFile(conf, []byte("* 192.168.77.0/24\n"), 0o644)
			env := []string{"LABCTL_VBOXMANAGE=" + filepath.Join(f.dir, "VBoxManage"), "LABCTL_HOST_OS=" + tt.os,
				"LABCTL_VBOX_NETWORKS_CONF=" + conf}
			for _, cmd := range [][]string{{"gate", tt.vagrant}, {"preflight", labSubnet, tt.vagrant}} {
				out, err := run(t, ".", env, "ruby", append([]string{"vbox_host.rb"}, cmd...)...)
				if tt.want == "" {
					if err != nil || strings.TrimSpace(out) != "ok" {
						t.Errorf("%s: %v\n%s", cmd[0], err, out)
					}
					continue
				}
				if err == nil || !strings.Contains(out, tt.want) {
					t.Errorf("%s: err = %v, want %q:\n%s", cmd[0], err, tt.want, out)
				}
			}
		})
	}
}

// TestNetworksConfWhereVagrantEnforces: the networks.conf rule applies
// where Vagrant's validate_hostonly_ip! applies it (action/network.rb @
// v2.4.9): VirtualBox >= 6.1.28, not on Windows (mingw/mswin), not on macOS
// with VirtualBox >= 7.0.0.
func TestNetworksConfWhereVagrantEnforces(t *testing.T) {
	testenv.RequireTool(t, "ruby")
	fix := "echo '* 192.168.77.0/24' | sudo tee -a /etc/vbox/networks.conf"
	tests := []struct {
		os, vbox string
		enforced bool
	}{
		{"linux-gnu", "7.0.14r161095", true},
		{"mingw32", "7.0.14r161095", false},
		{"mswin64_140", "6.1.50r161033", false},
		{"cygwin", "7.0.14r161095", true}, // Vagrant's windows? is mingw|mswin only
		{"darwin22", "7.0.14r161095", false},
		{"darwin22", "7.1.4r165100", false},
		{"darwin19", "6.1.28r147628", true},
		{"linux-gnu", "6.1.26r145957", false},
	}
	for _, tt := range tests {
		t.Run(tt.os+" "+tt.vbox, func(t *testing.T) {
			f := newFakeVBox(t, t.TempDir(), "VBoxManage", fakeState{Version: tt.vbox})
			out, err := run(t, ".", []string{"LABCTL_VBOXMANAGE=" + filepath.Join(f.dir, "VBoxManage"), "LABCTL_HOST_OS=" + tt.os,
				"LABCTL_VBOX_NETWORKS_CONF=" + filepath.Join(t.TempDir(), "absent.conf")},
				"ruby", "vbox_host.rb", "preflight", labSubnet)
			if !tt.enforced {
				if err != nil || strings.TrimSpace(out) != "ok" {
					t.Fatalf("preflight aborted where Vagrant skips networks.conf: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.HasSuffix(strings.TrimSpace(out), fix) {
				t.Fatalf("err = %v, want the networks.conf fix:\n%s", err, out)
			}
		})
	}
}

// TestWindowsFindsVBoxManage: on Windows VBoxManage is rarely on PATH;
// like Vagrant (driver/base.rb), labctl looks in VBOX_INSTALL_PATH, then
// VBOX_MSI_INSTALL_PATH (";"-separated), and turns the lab's DHCP server
// off with the one it finds.
func TestWindowsFindsVBoxManage(t *testing.T) {
	testenv.RequireTool(t, "ruby")
	for _, tt := range []struct {
		name string
		env  func(found, other string) []string
	}{
		{"VBOX_MSI_INSTALL_PATH", func(found, other string) []string {
			return []string{"VBOX_MSI_INSTALL_PATH=" + other + ";" + found + `\`}
		}},
		{"VBOX_INSTALL_PATH first", func(found, other string) []string {
			return []string{"VBOX_INSTALL_PATH=" + found, "VBOX_MSI_INSTALL_PATH=" + other}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			base := t.TempDir()
			found, other := filepath.Join(base, "Oracle", "VirtualBox"), filepath.Join(base, "elsewhere")
			os.MkdirAll(other, 0o755)
			f := newFakeVBox(t, found, "VBoxManage.exe", fakeState{Version: "7.1.4r165100",
				HostOnlyIfs: []fakeIf{{Name: "vboxnet4", IP: "192.168.77.1", Mask: "255.255.255.0"}},
				DHCPServers: []fakeDHCP{{Network: "HostInterfaceNetworking-vboxnet4", IP: "192.168.77.100",
					Lower: "192.168.77.101", Upper: "192.168.77.254", Mask: "255.255.255.0", Enabled: true}}})
			// The installer writes the folder with a trailing backslash.
			env := append(tt.env(found, other), "LABCTL_HOST_OS=mingw32", "PATH="+t.TempDir(), "SYSTEMDRIVE="+base)
			out, err := run(t, ".", env, "ruby", "vbox_host.rb", "dhcp-off", labSubnet)
			if err != nil || strings.TrimSpace(out) != "HostInterfaceNetworking-vboxnet4" {
				t.Fatalf("dhcp-off: %v\n%s", err, out)
			}
			if s := f.state().DHCPServers[0]; s.Enabled {
				t.Fatalf("server still enabled; calls %q", f.calls())
			}
		})
	}
}

// TestVBoxManageMissingSaysSo: no VBoxManage anywhere is said loudly, with
// the commands to run by hand, instead of skipping the DHCP step silently.
func TestVBoxManageMissingSaysSo(t *testing.T) {
	testenv.RequireTool(t, "ruby")
	env := []string{"LABCTL_HOST_OS=mingw32", "PATH=" + t.TempDir(), "SYSTEMDRIVE=" + t.TempDir(),
		"VBOX_MSI_INSTALL_PATH=" + t.TempDir(), "PROGRAMFILES=" + t.TempDir()}
	want := []string{"cannot find VBoxManage", "VBOX_MSI_INSTALL_PATH", "LABCTL_VBOXMANAGE",
		"VBoxManage list hostonlyifs", "VBoxManage dhcpserver modify --network=", "--disable", "vagrant reload"}
	// dhcp-off is asked for one thing and cannot do it: it fails.
	out, err := run(t, ".", env, "ruby", "vbox_host.rb", "dhcp-off", labSubnet)
	if err == nil {
		t.Fatalf("dhcp-off succeeded without VBoxManage:\n%s", out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("dhcp-off output lacks %q:\n%s", w, out)
		}
	}
	// The before-up trigger warns and lets Vagrant (which then reports
	// VirtualBox missing, or finds it where labctl did not) go on.
	out, err = run(t, ".", env, "ruby", "vbox_host.rb", "prepare", labSubnet, "2.4.9")
	if err != nil {
		t.Fatalf("prepare: %v\n%s", err, out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("prepare output lacks %q:\n%s", w, out)
		}
	}
}

// TestPrepareOnMacOSHostOnlyNets: macOS with VirtualBox 7 uses host-only
// networks; labctl creates no vboxnetN there, and a reused network that
// leases addresses on the lab subnet stops `up` with the fix.
func TestPrepareOnMacOSHostOnlyNets(t *testing.T) {
	testenv.RequireTool(t, "ruby")
	vagrantMade := fakeNet{Name: "vagrantnet-vbox1", GUID: "10000000-0000-0000-0000-000000000000", Enabled: true,
		Mask: "255.255.255.0", Lower: "192.168.77.0", Upper: "192.168.77.0"}
	leasing := vagrantMade
	leasing.Lower, leasing.Upper = "192.168.77.100", "192.168.77.254"
	for _, tt := range []struct {
		name string
		nets []fakeNet
		want string
	}{
		{"none yet", nil, ""},
		{"Vagrant's own, no range", []fakeNet{vagrantMade}, ""},
		{"one leasing on the subnet", []fakeNet{leasing},
			"VBoxManage hostonlynet modify --name=vagrantnet-vbox1 --lower-ip=192.168.77.0 --upper-ip=192.168.77.0"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVBox(t, t.TempDir(), "VBoxManage", fakeState{Version: "7.0.14r161095", HostOnlyNets: tt.nets})
			out, err := run(t, ".", []string{"LABCTL_VBOXMANAGE=" + filepath.Join(f.dir, "VBoxManage"), "LABCTL_HOST_OS=darwin22",
				"LABCTL_VBOX_NETWORKS_CONF=" + filepath.Join(t.TempDir(), "absent.conf")},
				"ruby", "vbox_host.rb", "prepare", labSubnet, "2.4.9")
			if tt.want == "" && err != nil {
				t.Fatalf("prepare: %v\n%s", err, out)
			}
			if tt.want != "" && (err == nil || !strings.HasSuffix(strings.TrimSpace(out), tt.want)) {
				t.Fatalf("err = %v, want fix %q:\n%s", err, tt.want, out)
			}
			for _, c := range f.calls() {
				if strings.HasPrefix(c, "hostonlyif") {
					t.Errorf("ran VBoxManage %s on macOS with VirtualBox 7", c)
				}
			}
		})
	}
}

// TestCheckUpFailsLoudly: after up, a VirtualBox DHCP server on the VM's
// adapter 2 network is running; the trigger turns it off and fails with
// `vagrant reload` rather than let the first deploy race it.
func TestCheckUpFailsLoudly(t *testing.T) {
	testenv.RequireTool(t, "ruby")
	lab := fakeIf{Name: "vboxnet0", IP: "192.168.77.1", Mask: "255.255.255.0", Status: "Up"}
	vms := map[string]map[string]string{"labctl-dom0": {"nic2": "hostonly", "hostonlyadapter2": "vboxnet0"}}
	off := freshDHCP
	off.Enabled = false
	for _, tt := range []struct {
		name    string
		srv     fakeDHCP
		wantErr bool
	}{
		{"server enabled by hand", freshDHCP, true},
		{"server off", off, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeVBox(t, t.TempDir(), "VBoxManage", fakeState{Version: "7.0.14r161095",
				HostOnlyIfs: []fakeIf{lab}, DHCPServers: []fakeDHCP{tt.srv}, VMs: vms})
			out, err := run(t, ".", []string{"LABCTL_VBOXMANAGE=" + filepath.Join(f.dir, "VBoxManage")},
				"ruby", "vbox_host.rb", "check-up", labSubnet, "labctl-dom0", "2")
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("check-up: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.HasSuffix(strings.TrimSpace(out), "vagrant reload") || !strings.Contains(out, "HostInterfaceNetworking-vboxnet0") {
				t.Fatalf("err = %v, want a failure naming the server with `vagrant reload`:\n%s", err, out)
			}
			if f.state().DHCPServers[0].Enabled {
				t.Fatal("server left enabled")
			}
		})
	}
}

// TestRubyAndGoRulesAgree: the Vagrantfile (vbox_host.rb) and labctl
// doctor (vmctl/vbox) hold the same VirtualBox/Vagrant rules, one in each
// language; this keeps them one rule.
func TestRubyAndGoRulesAgree(t *testing.T) {
	testenv.RequireTool(t, "ruby")
	hostOS := map[string]string{"linux": "linux-gnu", "darwin": "darwin22", "windows": "mingw32"}
	versions := []string{"6.0.12r133076", "6.1.26r145957", "6.1.28r147628", "6.1.50r161033", "7.0.0r153978",
		"7.0.14r161095", "7.1.4r165100", "7.2.0r170228", "7.3.0r171000", "8.0.0r170000"}
	script := `require "./vbox_host"
ARGV.each_slice(2) do |os, v|
  ver = LabctlHost.parse_version(v)
  puts [LabctlHost.networks_conf_enforced?(ver, os), LabctlHost.vagrant_minimum(ver, os).to_s, LabctlHost.hostonly_nets?(ver, os)].join(" ")
end`
	var args, want []string
	for _, goos := range []string{"linux", "darwin", "windows"} {
		for _, s := range versions {
			v, err := vbox.ParseVersion(s)
			if err != nil {
				t.Fatal(err)
			}
			args = append(args, hostOS[goos], s)
			want = append(want, strings.Join([]string{
				strconv.FormatBool(v.EnforcesNetworksConf(goos)), v.MinVagrant(goos), strconv.FormatBool(v.UsesHostOnlyNets(goos))}, " "))
		}
	}
	out, err := run(t, ".", nil, "ruby", append([]string{"-e", script}, args...)...)
	if err != nil {
		t.Fatalf("ruby: %v\n%s", err, out)
	}
	got := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(got) != len(want) {
		t.Fatalf("ruby printed %d lines, want %d:\n%s", len(got), len(want), out)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("%s VirtualBox %s: vbox_host.rb says %q, vmctl/vbox %q (networks.conf, min Vagrant, host-only nets)",
				args[2*i], args[2*i+1], got[i], want[i])
		}
	}
}
