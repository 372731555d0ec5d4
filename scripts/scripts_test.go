package scripts

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/provision"
)

func run(t *testing.T, dir string, env []string, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// TestShellcheck lints every shell script in this directory.
func TestShellcheck(t *testing.T) {
	testenv.RequireTool(t, "shellcheck")
	files, err := filepath.Glob("*.sh")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts found: %v", err)
	}
	out, err := run(t, ".", nil, "shellcheck", append([]string{"-x"}, files...)...)
	if err != nil {
		t.Fatalf("shellcheck %v: %v\n%s", files, err, out)
	}
}

// project copies the Vagrantfile and scripts into a temporary directory,
// so vagrant's .vagrant/ state never lands in the checkout.
func project(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	b, err := os.ReadFile("../Vagrantfile")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Vagrantfile"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "scripts", ".build"), 0o755); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if !strings.HasSuffix(f, ".sh") && !strings.HasSuffix(f, ".rb") && !strings.HasSuffix(f, ".env") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "scripts", f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// vagrantEnv keeps vagrant off the network and out of the user's ~/.vagrant.d:
// anything it would fetch goes to a closed port on loopback.
func vagrantEnv(t *testing.T) []string {
	return []string{
		"VAGRANT_HOME=" + t.TempDir(),
		"VAGRANT_CHECKPOINT_DISABLE=1",
		"VAGRANT_SERVER_URL=http://127.0.0.1:9",
		"VAGRANT_DEFAULT_PROVIDER=virtualbox",
	}
}

func TestVagrantValidate(t *testing.T) {
	testenv.RequireTool(t, "vagrant")
	dir := project(t)
	tests := []struct {
		name    string
		env     []string
		wantErr string
	}{
		{name: "defaults"},
		{name: "other subnet and sizes", env: []string{"LABCTL_SUBNET=10.77.0.0/24", "LABCTL_VM_MEMORY=8192", "LABCTL_VM_CPUS=4"}},
		{name: "subnet not a prefix", env: []string{"LABCTL_SUBNET=lab"}, wantErr: "LABCTL_SUBNET=lab"},
		{name: "IPv6 subnet", env: []string{"LABCTL_SUBNET=fd00::/64"}, wantErr: "IPv4"},
		{name: "memory not a number", env: []string{"LABCTL_VM_MEMORY=4G"}, wantErr: "LABCTL_VM_MEMORY=4G"},
		{name: "memory too small", env: []string{"LABCTL_VM_MEMORY=1024"}, wantErr: "below 2048"},
		{name: "dom0 takes everything", env: []string{"LABCTL_DOM0_MEMORY=4096"}, wantErr: "no memory for guests"},
		{name: "dom0 outside subnet", env: []string{"LABCTL_DOM0_IP=10.0.0.2"}, wantErr: "not inside"},
		{name: "bad MAC", env: []string{"LABCTL_UPLINK_MAC=zz"}, wantErr: "12 hex digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := run(t, dir, append(vagrantEnv(t), tt.env...), "vagrant", "validate", "--ignore-provider")
			if tt.wantErr == "" {
				if err != nil || !strings.Contains(out, "validated successfully") {
					t.Fatalf("vagrant validate: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(out, tt.wantErr) {
				t.Fatalf("err = %v, want output with %q:\n%s", err, tt.wantErr, out)
			}
		})
	}
}

// fakeVBoxManage writes a VBoxManage that answers --version with version,
// `list X` with testdata files and logs every call.
func fakeVBoxManage(t *testing.T, version string, lists map[string]string) (path, log string) {
	t.Helper()
	dir := t.TempDir()
	log = filepath.Join(dir, "calls.log")
	var cases strings.Builder
	for list, fixture := range lists {
		abs, err := filepath.Abs(filepath.Join("..", "vmctl", "vbox", "testdata", fixture))
		if err != nil {
			t.Fatal(err)
		}
		cases.WriteString("\"list " + list + "\") cat '" + abs + "' ;;\n")
	}
	script := "#!/bin/sh\necho \"$*\" >> '" + log + "'\ncase \"$*\" in\n--version) printf '%s\\n' '" + version + "' ;;\n" +
		cases.String() + "esac\nexit 0\n"
	path = filepath.Join(dir, "VBoxManage")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path, log
}

func TestPreflight(t *testing.T) {
	testenv.RequireTool(t, "ruby")
	fix := "echo '* 192.168.77.0/24' | sudo tee -a /etc/vbox/networks.conf"
	absent := "<absent>"
	tests := []struct {
		name    string
		version string
		conf    string
		subnet  string
		ok      bool
		want    string
	}{
		{name: "7.0 without networks.conf", version: "7.0.14r161095", conf: absent, want: fix},
		{name: "6.1.28 without networks.conf", version: "6.1.28r147628", conf: absent, want: fix},
		{name: "6.1.26 needs no networks.conf", version: "6.1.26r145957", conf: absent, ok: true},
		{name: "too old for nested VT-x", version: "6.0.12r133076", conf: absent, want: "6.1 or later"},
		{name: "allowed by a line", version: "7.0.14r161095", conf: "* 192.168.77.0/24\n", ok: true},
		{name: "allowed by a wider range", version: "7.0.16_Ubuntur162802", conf: "* 10.0.0.0/8 192.168.0.0/16\n* 2001::/64\n", ok: true},
		{name: "file without the subnet", version: "7.0.14r161095", conf: "* 10.0.0.0/8\n", want: fix},
		{name: "empty file allows nothing", version: "7.0.14r161095", conf: "", want: "only in nothing"},
		{name: "bad range", version: "7.0.14r161095", conf: "* 192.168.77.0/40\n", want: fix},
		{name: "default range subnet", version: "7.0.14r161095", conf: absent, subnet: "192.168.56.0/24", ok: true},
		{name: "version after warnings", version: "WARNING: The vboxdrv kernel module is not loaded.\n7.1.4r165100", conf: absent, want: fix},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vbm, _ := fakeVBoxManage(t, tt.version, nil)
			conf := filepath.Join(t.TempDir(), "networks.conf")
			if tt.conf != absent {
				if err := os.WriteFile(conf, []byte(tt.conf), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			subnet := tt.subnet
			if subnet == "" {
				subnet = "192.168.77.0/24"
			}
			out, err := run(t, ".", []string{"LABCTL_VBOXMANAGE=" + vbm, "LABCTL_VBOX_NETWORKS_CONF=" + conf},
				"ruby", "vbox_host.rb", "preflight", subnet)
			if tt.ok {
				if err != nil || strings.TrimSpace(out) != "ok" {
					t.Fatalf("preflight: %v\n%s", err, out)
				}
				return
			}
			if err == nil || !strings.Contains(out, tt.want) {
				t.Fatalf("err = %v, want output with %q:\n%s", err, tt.want, out)
			}
			// The fix is the message's last line, ready to paste.
			if tt.want == fix {
				lines := strings.Split(strings.TrimSpace(out), "\n")
				if lines[len(lines)-1] != fix {
					t.Fatalf("last line %q, want the fix", lines[len(lines)-1])
				}
			}
		})
	}
}

func TestDHCPOff(t *testing.T) {
	testenv.RequireTool(t, "ruby")
	tests := []struct {
		name     string
		ifs      string
		servers  string
		disabled []string
	}{
		{name: "lab server enabled", ifs: "list-hostonlyifs-constructed-lab-vboxnet4.txt",
			servers: "list-dhcpservers-constructed-lab-vboxnet4-enabled.txt", disabled: []string{"HostInterfaceNetworking-vboxnet4"}},
		{name: "other networks only", ifs: "list-hostonlyifs-constructed-lab-vboxnet4.txt",
			servers: "list-dhcpservers-6.1-two-vagrant.txt"},
		{name: "legacy format, one disabled", ifs: "list-hostonlyifs-two-docker-machine.txt",
			servers: "list-dhcpservers-legacy-one-disabled-docker-machine.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vbm, log := fakeVBoxManage(t, "7.0.14r161095", map[string]string{"hostonlyifs": tt.ifs, "dhcpservers": tt.servers})
			out, err := run(t, ".", []string{"LABCTL_VBOXMANAGE=" + vbm}, "ruby", "vbox_host.rb", "dhcp-off", "192.168.77.0/24")
			if err != nil {
				t.Fatalf("dhcp-off: %v\n%s", err, out)
			}
			calls, _ := os.ReadFile(log)
			var modified []string
			for _, c := range strings.Split(string(calls), "\n") {
				if rest, ok := strings.CutPrefix(c, "dhcpserver modify --network="); ok {
					name, ok := strings.CutSuffix(rest, " --disable")
					if !ok {
						t.Fatalf("unexpected call %q", c)
					}
					modified = append(modified, name)
				}
			}
			if strings.Join(modified, ",") != strings.Join(tt.disabled, ",") {
				t.Fatalf("disabled %q, want %q (calls:\n%s)", modified, tt.disabled, calls)
			}
		})
	}
}

// TestVagrantUpPreflightAborts drives the real Vagrantfile: `vagrant up`
// with a VirtualBox that refuses the lab subnet stops in the preflight
// trigger, before any box is fetched or VM touched.
func TestVagrantUpPreflightAborts(t *testing.T) {
	testenv.RequireTool(t, "vagrant")
	dir := project(t)
	vbm, log := fakeVBoxManage(t, "7.0.14r161095", nil)
	env := append(vagrantEnv(t),
		"PATH="+filepath.Dir(vbm)+string(os.PathListSeparator)+os.Getenv("PATH"),
		"LABCTL_VBOX_NETWORKS_CONF="+filepath.Join(t.TempDir(), "absent.conf"),
		"LABCTL_BOX=labctl-test/no-such-box")
	out, err := run(t, dir, env, "vagrant", "up", "--provider", "virtualbox")
	if err == nil {
		t.Fatalf("vagrant up succeeded:\n%s", out)
	}
	if !strings.Contains(out, "echo '* 192.168.77.0/24' | sudo tee -a /etc/vbox/networks.conf") {
		t.Fatalf("no fix in output:\n%s", out)
	}
	if strings.Contains(out, "no-such-box") {
		t.Fatalf("vagrant went on to the box:\n%s", out)
	}
	calls, _ := os.ReadFile(log)
	for _, c := range strings.Split(strings.TrimSpace(string(calls)), "\n") {
		if c != "--version" {
			t.Errorf("VBoxManage %s called before the preflight stopped vagrant", c)
		}
	}
}

// TestInstallLabctl installs a stand-in binary from both upload layouts.
func TestInstallLabctl(t *testing.T) {
	testenv.RequireRoot(t)
	elf, err := exec.LookPath("true")
	if err != nil {
		t.Skip("no true(1)")
	}
	elfBytes, err := os.ReadFile(elf)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		rel     string
		content []byte
		wantErr string
	}{
		{"uploaded as the directory", "labctl", elfBytes, ""},
		{"uploaded into an existing directory", ".build/labctl", elfBytes, ""},
		{"not an executable", "labctl", []byte("#!/bin/sh\n"), "not an ELF"},
		{"nothing uploaded", "", nil, "no labctl uploaded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			upload := filepath.Join(t.TempDir(), "upload")
			dest := filepath.Join(t.TempDir(), "labctl")
			if tt.rel != "" {
				if err := os.MkdirAll(filepath.Dir(filepath.Join(upload, tt.rel)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(upload, tt.rel), tt.content, 0o755); err != nil {
					t.Fatal(err)
				}
			}
			out, err := run(t, ".", []string{"LABCTL_UPLOAD_DIR=" + upload, "LABCTL_INSTALL_PATH=" + dest}, "bash", "install-labctl.sh")
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(out, tt.wantErr) {
					t.Fatalf("err = %v, want %q:\n%s", err, tt.wantErr, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("install-labctl: %v\n%s", err, out)
			}
			got, err := os.ReadFile(dest)
			if err != nil || !bytes.Equal(got, elfBytes) {
				t.Fatalf("installed file differs: %v", err)
			}
			if st, _ := os.Stat(dest); st.Mode().Perm() != 0o755 {
				t.Errorf("mode %o", st.Mode().Perm())
			}
			if _, err := os.Stat(upload); err == nil {
				t.Error("upload directory left behind")
			}
		})
	}
}

// TestLabctlProvision writes the VM's spec on first boot (checked with
// labctl's own spec loader), keeps it afterwards, and runs labctl.
func TestLabctlProvision(t *testing.T) {
	mac, err := os.ReadFile("/sys/class/net/lo/address")
	if err != nil {
		t.Skip("no /sys/class/net/lo")
	}
	dir := t.TempDir()
	spec := filepath.Join(dir, "etc", "lab.yaml")
	argsLog := filepath.Join(dir, "args")
	fake := filepath.Join(dir, "labctl")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\nprintf '%s\\n' \"$@\" > '"+argsLog+"'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := []string{
		"LABCTL_SPEC=" + spec, "LABCTL_INSTALL_PATH=" + fake,
		"LABCTL_DOM0_CIDR=10.77.0.2/24", "LABCTL_HOST_CIDR=10.77.0.1/24",
		"LABCTL_DHCP_START=10.77.0.3", "LABCTL_DHCP_END=10.77.0.200",
		"OPAMROOT=/opt/labctl/opam", "OPAM_SWITCH=mirage",
		"LABCTL_UPLINK_MAC=" + strings.ToUpper(strings.TrimSpace(string(mac))),
	}
	out, err := run(t, ".", env, "bash", "labctl-provision.sh")
	if err != nil {
		t.Fatalf("labctl-provision: %v\n%s", err, out)
	}
	s, err := provision.LoadSpec(spec)
	if err != nil {
		t.Fatalf("written spec is not valid: %v", err)
	}
	if s.Network.Uplink != "lo" || s.Network.Address.String() != "10.77.0.2/24" || s.Network.HostAddress.String() != "10.77.0.1/24" || s.Guests.Runtime != "xen" {
		t.Fatalf("spec = %+v", s)
	}
	// The agent runs under sudo's secure_path: the spec must name the
	// toolchain scripts/install-toolchain.sh installed (versions.env).
	if s.Xen.OpamRoot != "/opt/labctl/opam" || s.Xen.OpamSwitch != "mirage" {
		t.Fatalf("xen section = %+v, want opam_root /opt/labctl/opam, opam_switch mirage", s.Xen)
	}
	if st, _ := os.Stat(spec); st.Mode().Perm() != 0o600 {
		t.Errorf("spec mode %o, want 600", st.Mode().Perm())
	}
	if st, _ := os.Stat(filepath.Dir(spec)); st.Mode().Perm() != 0o700 {
		t.Errorf("spec dir mode %o, want 700", st.Mode().Perm())
	}
	args, _ := os.ReadFile(argsLog)
	if string(args) != "--file\n"+spec+"\nprovision\n--target\nlocal\n" {
		t.Fatalf("labctl ran with %q", args)
	}
	// Second boot: the spec (maybe edited) is kept.
	if err := os.WriteFile(spec, []byte("# edited\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := run(t, ".", env, "bash", "labctl-provision.sh"); err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(spec); string(b) != "# edited\n" {
		t.Fatalf("spec rewritten: %q", b)
	}
	// No NIC with adapter 2's MAC: a clear error.
	os.Remove(spec)
	env[len(env)-1] = "LABCTL_UPLINK_MAC=02:00:00:00:00:99"
	if out, err := run(t, ".", env, "bash", "labctl-provision.sh"); err == nil || !strings.Contains(out, "02:00:00:00:00:99") {
		t.Fatalf("unknown MAC: %v\n%s", err, out)
	}
}
