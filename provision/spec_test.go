package provision

import (
	"bytes"
	"errors"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestDefaultsAreTheArticles(t *testing.T) {
	s := Default()
	n := s.Network
	if n.Bridge != "br0" || n.Uplink != "eth1" || n.Address.String() != "192.168.77.2/24" ||
		n.DHCP.Start.String() != "192.168.77.3" || n.DHCP.End.String() != "192.168.77.200" || n.DHCP.Lease.String() != "1h0m0s" ||
		!n.NAT || !n.Promiscuous {
		t.Fatalf("defaults differ from the article: %+v", n)
	}
}

func TestSpecValidation(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		field string // "" = valid
		want  string // part of the message
	}{
		{"defaults", "", "", ""},
		{"edited range", "network:\n  dhcp:\n    start: 192.168.77.100\n    end: 192.168.77.150\n", "", ""},
		{"other subnet", "network:\n  address: 10.20.0.1/16\n  host_address: 10.20.0.2/16\n  dhcp:\n    start: 10.20.1.1\n    end: 10.20.1.200\n", "", ""},
		{"unknown top key", "labb: x\n", "", `unknown key "labb" in the top level`},
		{"unknown nested key", "network:\n  brige: br1\n", "", `unknown key "brige" in network`},
		{"unknown dhcp key", "network:\n  dhcp:\n    stop: 1.2.3.4\n", "", `unknown key "stop" in network.dhcp`},
		{"typo gets did-you-mean", "network:\n  brige: br1\n", "", `unknown key "brige" in network; did you mean "bridge"?`},
		{"typo in guests", "guests:\n  replica: 2\n", "", `did you mean "replicas"?`},
		{"far from any key", "network:\n  zzzzzzzz: 1\n", "", `unknown key "zzzzzzzz" in network (see`},
		{"bad cidr", "network:\n  address: 192.168.77.2\n", "network.address", "CIDR"},
		{"ipv6 address", "network:\n  address: fd00::2/64\n", "network.address", "IPv4"},
		{"network address", "network:\n  address: 192.168.77.0/24\n", "network.address", "not the network or broadcast"},
		{"range outside subnet", "network:\n  dhcp:\n    start: 192.168.78.3\n", "network.dhcp.start", "inside the subnet 192.168.77.0/24"},
		{"end outside subnet", "network:\n  dhcp:\n    end: 192.168.77.255\n", "network.dhcp.end", "inside the subnet"},
		{"range contains bridge", "network:\n  dhcp:\n    start: 192.168.77.2\n", "network.dhcp", "does not contain the bridge address 192.168.77.2"},
		{"range contains host", "network:\n  host_address: 192.168.77.50/24\n", "network.dhcp", "does not contain the host address"},
		{"range reversed", "network:\n  dhcp:\n    start: 192.168.77.100\n    end: 192.168.77.50\n", "network.dhcp.end", "not below network.dhcp.start"},
		{"bad range address", "network:\n  dhcp:\n    start: 192.168.77\n", "network.dhcp.start", "IPv4 address"},
		{"long bridge name", "network:\n  bridge: abcdefghijklmnop\n", "network.bridge", "at most 15 bytes"},
		{"long uplink name", "network:\n  uplink: eth1234567890abcd\n", "network.uplink", "at most 15 bytes"},
		{"empty bridge", "network:\n  bridge: \"\"\n", "network.bridge", "not empty"},
		{"empty lab", "lab: \"\"\n", "lab", "lower-case"},
		{"bad lab", "lab: My_Lab\n", "lab", "lower-case"},
		{"duplicate names", "network:\n  bridge: eth1\n", "network.uplink", "different from network.bridge"},
		{"slash in name", "network:\n  bridge: br/0\n", "network.bridge", "letters, digits"},
		{"host outside", "network:\n  host_address: 10.0.0.1/24\n", "network.host_address", "in the lab subnet"},
		{"short lease", "network:\n  dhcp:\n    lease: 30s\n", "network.dhcp.lease", "at least 2m"},
		{"bad lease", "network:\n  dhcp:\n    lease: soon\n", "", "not a duration"},
		{"type error", "network:\n  dhcp:\n    start: [1, 2]\n", "", "network.dhcp.start: cannot unmarshal"},
		{"type error top", "lab: {a: 1}\n", "", "lab: cannot unmarshal"},
		{"long lease", "network:\n  dhcp:\n    lease: 9000h\n", "network.dhcp.lease", "at most 8760h"},
		{"two documents", "lab: a\n---\nlab: b\n", "", "one YAML document"},
		{"not a map", "- a\n- b\n", "", "lab.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tt.yaml), "lab.yaml")
			if tt.want == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want one containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "lab.yaml: ") {
				t.Fatalf("error %q does not name the file and contain %q", err, tt.want)
			}
			if tt.field != "" {
				var fe *FieldError
				found := false
				for _, e := range unwrapAll(err) {
					if errors.As(e, &fe) && fe.Field == tt.field {
						found = true
					}
				}
				if !found {
					t.Fatalf("error %q does not name field %s", err, tt.field)
				}
			}
		})
	}
}

func unwrapAll(err error) []error {
	out := []error{err}
	if u, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range u.Unwrap() {
			out = append(out, unwrapAll(e)...)
		}
	} else if e := errors.Unwrap(err); e != nil {
		out = append(out, unwrapAll(e)...)
	}
	return out
}

func TestDefaultSpecRoundTrips(t *testing.T) {
	s, err := ParseSpec(Default().YAML(), "rendered")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, Default()) {
		t.Fatalf("rendered spec reads back as %+v", s)
	}
}

// FuzzParseSpec: any input gives a valid spec or an error naming the file,
// never a panic; a spec it accepts validates.
func FuzzParseSpec(f *testing.F) {
	f.Add(DefaultSpecYAML())
	f.Add([]byte("network:\n  dhcp:\n    start: 192.168.77.3\n"))
	f.Add([]byte("lab: x\nnetwork: {bridge: br1, uplink: eth0}\n"))
	f.Add([]byte("network:\n  address: 10.0.0.1/8\n"))
	f.Add([]byte("\x00\xff: ["))
	f.Add([]byte("network:\n  address: 300.0.0.2/24\n  dhcp:\n    start: [1]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSpec(b, "fuzz.yaml")
		if err != nil {
			if !strings.HasPrefix(err.Error(), "fuzz.yaml: ") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		if err := s.Validate(); err != nil {
			t.Fatalf("accepted an invalid spec: %v", err)
		}
		// What it accepts reads back the same from its own YAML (the
		// recorded spec.yaml), typed addresses included, and the typed
		// view agrees with itself.
		back, err := ParseSpec(s.YAML(), "recorded.yaml")
		if err != nil {
			t.Fatalf("own YAML refused: %v\n%s", err, s.YAML())
		}
		if !reflect.DeepEqual(back, s) {
			t.Fatalf("round trip differs:\n%+v\n%+v", s, back)
		}
		if s.Subnet() != s.BridgeAddr().Masked() || !s.Subnet().Contains(s.Network.DHCP.Start.Addr()) {
			t.Fatalf("typed network view disagrees: %+v", s.Network)
		}
	})
}

// A spec file over MaxSpecSize is refused before it is parsed (issue 10).
func TestLoadSpecSizeCap(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lab.yaml")
	big := append([]byte("lab: a\n# "), bytes.Repeat([]byte("x"), MaxSpecSize)...)
	if err := os.WriteFile(p, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSpec(p); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("LoadSpec(%d bytes) = %v, want a size error", len(big), err)
	}
	if err := os.WriteFile(p, []byte("lab: a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSpec(p); err != nil {
		t.Fatal(err)
	}
}

// The spec is read with go.yaml.in/yaml/v3, the maintained successor of
// the archived gopkg.in/yaml.v3 (issue 12): no package of labctl imports
// the old path and go.mod does not require it (it may stay in go.sum as
// a dependency's test dependency).
func TestYAMLModule(t *testing.T) {
	root := ".."
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(mod), "\n") {
		if strings.Contains(line, "gopkg.in/yaml.v3") && !strings.Contains(line, "// indirect") {
			t.Errorf("go.mod requires the archived module: %q", strings.TrimSpace(line))
		}
	}
	fset := token.NewFileSet()
	var readers int
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "fixtures") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, imp := range f.Imports {
			switch imp.Path.Value {
			case `"gopkg.in/yaml.v3"`:
				t.Errorf("%s imports gopkg.in/yaml.v3: use go.yaml.in/yaml/v3", path)
			case `"go.yaml.in/yaml/v3"`:
				readers++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if readers == 0 {
		t.Error("nothing imports go.yaml.in/yaml/v3: what reads the spec?")
	}
}
