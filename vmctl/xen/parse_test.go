package xen

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/internal/toolver"
)

func fixture(t testing.TB, name string) []byte {
	return testenv.ReadFile(t, "testdata", "fixtures", name)
}

func TestParseListFixtures(t *testing.T) {
	type row struct {
		name  string
		id    int
		mem   int
		flags string
		state string
		alive bool
	}
	tests := []struct {
		file string
		want []row
	}{
		{"list-4.0.1-four-instances.txt", []row{
			{"Domain-0", 0, 1023, "r-----", "running", true},
			{"server01.example.com", 1, 1024, "-b----", "blocked", true},
			{"web3106215069.example.com", 3, 4096, "-b----", "blocked", true},
			{"testinstance.example.com", 2, 2048, "r-----", "running", true},
		}},
		{"list-4.4-crashed-null-domain.txt", []row{
			{"Domain-0", 0, 1023, "r-----", "running", true},
			{"server01.example.com", 1, 1024, "-b----", "blocked", true},
			{"(null)", 28441, 789, "--psc-", "crashed", false},
			{"alsodying.example.com", 28448, 1024, "--psc-", "crashed", false},
		}},
		{"list-xl-manpage-example.txt", []row{
			{"Domain-0", 0, 750, "r-----", "running", true},
			{"win", 1, 1019, "r-----", "running", true},
			{"linux", 2, 2048, "r-----", "running", true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			doms, err := ParseList(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var got []row
			for _, d := range doms {
				got = append(got, row{d.Name, d.ID, d.MemMB, d.Flags, d.State(), d.Alive()})
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseListCases(t *testing.T) {
	const header = "Name                                        ID   Mem VCPUs      State   Time(s)\n"
	tests := []struct {
		name    string
		in      string
		want    []Domain
		wantErr string
	}{
		{"header only", header, nil, ""},
		{"name with spaces and long name pushes columns",
			header + "my guest                                     4    32     1     -b----       0.1\n" +
				"a-very-long-domain-name-that-is-longer-than-forty-characters 12 32 1 --p---  1.0\n",
			[]Domain{
				{Name: "my guest", ID: 4, MemMB: 32, VCPUs: 1, Flags: "-b----", Time: 0.1},
				{Name: "a-very-long-domain-name-that-is-longer-than-forty-characters", ID: 12, MemMB: 32, VCPUs: 1, Flags: "--p---", Time: 1},
			}, ""},
		{"dying domain flag", header + "going 7 32 1 -----d 0.0\n", []Domain{{Name: "going", ID: 7, MemMB: 32, VCPUs: 1, Flags: "-----d"}}, ""},
		{"tabs and CRLF", strings.ReplaceAll(header, "\n", "\r\n") + "g\t5\t32\t1\t-b----\t0.2\r\n", []Domain{{Name: "g", ID: 5, MemMB: 32, VCPUs: 1, Flags: "-b----", Time: 0.2}}, ""},
		{"empty", "", nil, "expected a header"},
		{"wrong header", "Idx BE Mac Addr.\n", nil, "expected header"},
		{"verbose header is not plain list", "Name ID Mem VCPUs State Time(s) UUID Reason-Code Security Label\n", nil, "expected header"},
		{"bad flags letter", header + "g 5 32 1 -x---- 0.2\n", nil, "expected state letter"},
		{"short flags", header + "g 5 32 1 -b--- 0.2\n", nil, "6-letter state"},
		{"bad id", header + "g five 32 1 -b---- 0.2\n", nil, "expected a domain id"},
		{"too few columns", header + "g 5 32 -b---- 0.2\n", nil, "expected 6 columns"},
		{"negative time", header + "g 5 32 1 -b---- -1\n", nil, "cpu time"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseList([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.HasPrefix(err.Error(), "xl list: ") {
					t.Fatalf("err = %v, want one starting \"xl list: \" and containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestParseInfoFixtures(t *testing.T) {
	tests := []struct {
		file     string
		version  string
		hvm      bool
		virtCaps int
		xenCaps  []string
		fields   map[string]string
	}{
		{"info-4.19.1-alpine.txt", "4.19.1", true, 10,
			[]string{"xen-3.0-x86_64", "hvm-3.0-x86_32", "hvm-3.0-x86_32p", "hvm-3.0-x86_64"},
			map[string]string{"cc_compile_domain": "", "xen_changeset": "", "free_memory": "2341"}},
		{"info-4.18.0-vmsifter.txt", "4.18.0", true, 7, nil,
			map[string]string{"xen_commandline": "placeholder console=vga dom0_mem=10096M hpet=legacy-replacement dom0_max_vcpus=8 dom0_vcpus_pin=1 ept=ad=0 iommu=no-sharept spec-ctrl=0 altp2m=1 xpti=0 loglvl=all guest_loglvl=all smt=0 vpmu=bts apicv=0 cpufreq=hwp:hdc=0;xen:performance,verbose no-real-mode edd=off"}},
		{"info-4.11.4-debian-xen-devel.txt", "4.11.4", true, 1,
			[]string{"xen-3.0-x86_64", "xen-3.0-x86_32p", "hvm-3.0-x86_32", "hvm-3.0-x86_32p", "hvm-3.0-x86_64"},
			// Trailing spaces in the mail are trimmed.
			map[string]string{"xen_changeset": "", "cc_compiler": "gcc (Debian 8.3.0-6) 8.3.0"}},
		{"info-4.0.1-ganeti-empty-virtcaps.txt", "4.0.1", false, 0,
			[]string{"xen-3.0-x86_64", "xen-3.0-x86_32p"},
			map[string]string{"node_to_cpu": "node0:0-3", "cc_compiler": "gcc version 4.4.5 (Debian 4.4.5-8)"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			info, err := ParseInfo(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if info.XenVersion != tt.version {
				t.Errorf("XenVersion = %q, want %q", info.XenVersion, tt.version)
			}
			if info.HasVirtCap("hvm") != tt.hvm {
				t.Errorf("HasVirtCap(hvm) = %v, want %v (virt_caps %q)", !tt.hvm, tt.hvm, info.VirtCaps)
			}
			if len(info.VirtCaps) != tt.virtCaps {
				t.Errorf("VirtCaps = %q, want %d entries", info.VirtCaps, tt.virtCaps)
			}
			if tt.xenCaps != nil && !reflect.DeepEqual(info.XenCaps, tt.xenCaps) {
				t.Errorf("XenCaps = %q, want %q", info.XenCaps, tt.xenCaps)
			}
			for k, want := range tt.fields {
				got, ok := info.Fields[k]
				if !ok || got != want {
					t.Errorf("Fields[%q] = %q (present %v), want %q", k, got, ok, want)
				}
			}
		})
	}
}

func TestParseInfoErrors(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"empty", "", "got none"},
		{"blank lines", "\n  \n", "got none"},
		{"no colon", "host                   : h\nthis line has no separator\n", "line 2"},
		{"key with spaces", "bad key : v\n", "expected \"key : value\""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseInfo([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "xl info: ") {
				t.Fatalf("err = %v, want \"xl info: ...%s...\"", err, tt.want)
			}
		})
	}
	// A missing xen_version with no parts leaves XenVersion empty, which the
	// version check then reports.
	info, err := ParseInfo([]byte("host : h\n"))
	if err != nil || info.XenVersion != "" {
		t.Fatalf("info = %+v, %v", info, err)
	}
	if _, err := toolver.Xen(info.XenVersion); err == nil || !strings.Contains(err.Error(), "expected xen_version") {
		t.Fatalf("toolver.Xen(\"\") = %v", err)
	}
}

func TestParseNetworkList(t *testing.T) {
	tests := []struct {
		file string
		want []Vif
	}{
		{"network-list-two-vifs-dom28.txt", []Vif{
			{0, 0, mustMAC("00:16:3e:10:92:37"), 0, 4, 11, 1280, 1281, "/local/domain/0/backend/vif/28/0"},
			{1, 0, mustMAC("00:16:3e:10:8a:7e"), 1, 4, 12, 1282, 1283, "/local/domain/0/backend/vif/28/1"},
		}},
		{"network-list-two-vifs-dom301.txt", []Vif{
			{0, 0, mustMAC("00:16:3e:0c:5a:4a"), 0, 4, 52, 768, 769, "/local/domain/0/backend/vif/301/0"},
			{1, 0, mustMAC("00:16:3e:0c:5b:68"), 1, 4, 53, 1280, 1281, "/local/domain/0/backend/vif/301/1"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got, err := ParseNetworkList(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
	const header = "Idx BE Mac Addr.         handle state evt-ch   tx-/rx-ring-ref BE-path\n"
	bad := []struct{ name, in, want string }{
		{"no header", "0 0 00:16:3e:10:92:37 0 4 11 1280/1281 /x\n", "expected header"},
		{"empty", "", "got no lines"},
		{"bad mac", header + "0 0 00:16:3e:10:92 0 4 11 1280/1281 /x\n", "expected a MAC"},
		{"no slash", header + "0 0 00:16:3e:10:92:37 0 4 11 1280 /x\n", "TX/RX"},
		{"relative path", header + "0 0 00:16:3e:10:92:37 0 4 11 1/2 x\n", "absolute xenstore"},
		{"columns", header + "0 0 00:16:3e:10:92:37 0 4\n", "expected 8 columns"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseNetworkList([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "xl network-list: ") {
				t.Fatalf("err = %v, want \"xl network-list: ...%s...\"", err, tt.want)
			}
		})
	}
	// A vif that has not connected yet shows -1 refs and is parsed as such.
	got, err := ParseNetworkList([]byte(header + "0   0  00:16:3e:00:00:01      0     1     -1    -1/-1          /local/domain/0/backend/vif/9/0\n"))
	if err != nil || len(got) != 1 || got[0].State != 1 || got[0].TxRingRef != -1 {
		t.Fatalf("got %+v, %v", got, err)
	}
}

func TestParseListLong(t *testing.T) {
	// The fixture is libvirt's libxl_domain_config; constructed.json wraps
	// it the way xl list -l does (testdata/README.md).
	b, err := os.ReadFile(filepath.Join("testdata", "xl-list-l-constructed.json"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseListLong(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []DomainConfig{
		{DomID: 0, Name: "Domain-0", Type: "pv", MaxMemKB: 1048576},
		{DomID: 7, Name: "test-pvh", Type: "pvh", UUID: "039e9ee6-4a84-3055-4c81-8ba426ae2656",
			Kernel: "/boot/vmlinuz", MaxMemKB: 524288,
			Disks: []DomainDisk{{Target: "/var/lib/xen/images/test-pv.img", Vdev: "xvda", Format: "raw", ReadWrite: true}},
			NICs:  []DomainNIC{{DevID: 0, MAC: mustMAC("00:16:3e:3e:86:60"), Bridge: "br0"}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
	// The bare config object (what the fixture is) is not xl list -l output.
	if _, err := ParseListLong(fixture(t, "list-l-config-libvirt-basic-pvh.json")); err == nil || !strings.Contains(err.Error(), "expected a JSON array") {
		t.Errorf("bare config: err = %v", err)
	}
	bad := []struct{ name, in, want string }{
		{"empty", "  ", "got no output"},
		{"sxp", "(domain (domid 0))", "SXP"},
		{"no domid", `[{"config":{}}]`, "\"domid\""},
		{"no config", `[{"domid":3}]`, "\"config\""},
		{"bad mac", `[{"domid":3,"config":{"c_info":{"name":"g"},"nics":[{"mac":"zz"}]}}]`, "expected a MAC"},
		{"truncated", `[{"domid":3,`, "expected a JSON array"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseListLong([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "xl list -l: ") {
				t.Fatalf("err = %v, want \"xl list -l: ...%s...\"", err, tt.want)
			}
		})
	}
}

func TestParseXLMirageFixtures(t *testing.T) {
	// labctl never uses mirage's .xl, but the reader the fake xl and the
	// round-trip tests rely on must read real ones.
	tests := []struct {
		file   string
		name   string
		memory int64
		disks  int
		vifs   int
	}{
		{"auth_service-mirage2.8.xl", "auth_service", 256, 2, 0},
		{"block_test-mirage3.xl", "block_test", 256, 1, 0},
		{"ping-mirage2.xl", "ping", 256, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := ParseXL(fixture(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if cfg["name"].Str != tt.name || cfg["memory"].Num != tt.memory || len(cfg["disk"].List) != tt.disks || len(cfg["vif"].List) != tt.vifs {
				t.Errorf("got name %q memory %d disks %d vifs %d", cfg["name"].Str, cfg["memory"].Num, len(cfg["disk"].List), len(cfg["vif"].List))
			}
			if _, ok := cfg["disk"]; !ok {
				t.Error("disk missing")
			}
		})
	}
	// The mirage 3 test expectation has a placeholder where a number goes.
	if _, err := ParseXL(fixture(t, "test-expected-placeholders-mirage3.xl")); err == nil || !strings.Contains(err.Error(), "memory") {
		t.Errorf("placeholder MEMORY: err = %v", err)
	}
}
