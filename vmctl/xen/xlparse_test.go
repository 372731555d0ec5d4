package xen

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/vmctl"
)

// The .xl files labctl renders, parsed by Xen's own xl (4.17, Debian's
// xen-utils) through ../shared/tools/xl-parse: `xl -N create -n FILE` is a
// dry run that prints the domain config libxl would build, as JSON. Our
// ParseXL only proves we agree with ourselves; this proves xl agrees.

// xlParse returns the config xl parsed from an .xl text.
func xlParse(t *testing.T, xl []byte) (map[string]any, error) {
	t.Helper()
	out, err := testenv.XLParse(t, xl)
	if err != nil {
		return nil, err
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatalf("xl printed no JSON config: %v\n%s", err, out)
	}
	return cfg, nil
}

// at walks a JSON path ("b_info.kernel", "nics.0.mac").
func at(v any, path string) any {
	for _, k := range strings.Split(path, ".") {
		switch x := v.(type) {
		case map[string]any:
			v = x[k]
		case []any:
			var i int
			if _, err := fmt.Sscan(k, &i); err != nil || i >= len(x) {
				return nil
			}
			v = x[i]
		default:
			return nil
		}
	}
	return v
}

// TestXLAcceptsRenderedConfigs: every shape of .xl RenderXL produces (and
// the golden files) parses with the real xl into the domain labctl means.
func TestXLAcceptsRenderedConfigs(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name string
		mod  func(*vmctl.GuestSpec)
	}{
		{"default", func(*vmctl.GuestSpec) {}},
		{"memory and extra", func(g *vmctl.GuestSpec) { g.Memory = 64; g.Extra = "--ipv4-only=true -l *:debug" }},
		{"largest memory, longest name", func(g *vmctl.GuestSpec) { g.Memory = 4096; g.Name = long }},
		{"other bridge and mac", func(g *vmctl.GuestSpec) { g.Bridge = "xenbr0"; g.MAC = mustMAC("00:16:3e:ff:00:01") }},
		{"path characters", func(g *vmctl.GuestSpec) {
			g.Kernel = "/srv/lab-1/build/auth.v2/dist/auth.xen"
			g.Image = "/srv/lab-1/images/users_2.img"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := guest()
			tt.mod(&g)
			xl, err := RenderXL(g)
			if err != nil {
				t.Fatal(err)
			}
			cfg, err := xlParse(t, xl)
			if err != nil {
				t.Fatalf("xl rejects what labctl renders: %v\n%s", err, xl)
			}
			mem := g.Memory
			if mem == 0 {
				mem = DefaultMemoryMB
			}
			want := map[string]any{
				"c_info.type":       "pvh",
				"c_info.name":       g.Name,
				"b_info.kernel":     g.Kernel,
				"b_info.max_memkb":  float64(mem * 1024),
				"disks.0.vdev":      "xvdb",
				"disks.0.pdev_path": g.Image,
				"disks.0.format":    "raw",
				"nics.0.mac":        g.MAC.String(),
				"nics.0.bridge":     g.Bridge,
				"on_crash":          "preserve",
			}
			if g.Extra != "" {
				want["b_info.cmdline"] = g.Extra
			}
			for path, w := range want {
				if got := at(cfg, path); got != w {
					t.Errorf("xl's %s = %v, want %v", path, got, w)
				}
			}
			// access=ro: libxl leaves readwrite at its default, 0.
			if rw := at(cfg, "disks.0.readwrite"); rw != nil && rw != float64(0) {
				t.Errorf("users image attached read-write (readwrite = %v)", rw)
			}
		})
	}
	goldens, _ := filepath.Glob(filepath.Join("testdata", "golden", "*.xl"))
	if len(goldens) == 0 {
		t.Fatal("no golden .xl files")
	}
	for _, f := range goldens {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := xlParse(t, b); err != nil {
			t.Errorf("xl rejects golden %s: %v", f, err)
		}
	}
}

// TestXLRejectsBrokenConfigs: the kit is a real check, not a yes-sayer.
func TestXLRejectsBrokenConfigs(t *testing.T) {
	good, err := RenderXL(guest())
	if err != nil {
		t.Fatal(err)
	}
	// Each is a mistake xl itself refuses (it is lenient elsewhere: a
	// string memory or a short MAC pass its dry run).
	broken := map[string]string{
		"unterminated quote":  strings.Replace(string(good), "type = 'pvh'", "type = 'pvh", 1),
		"unknown type":        strings.Replace(string(good), "type = 'pvh'", "type = 'pvhx'", 1),
		"no name":             strings.Replace(string(good), "name = 'auth-1'\n", "", 1),
		"no kernel":           strings.Replace(string(good), "kernel = '/var/lib/labctl/lab/build/auth/dist/auth.xen'\n", "", 1),
		"unknown disk format": strings.Replace(string(good), "format=raw", "format=qcow9", 1),
		"unknown on_crash":    strings.Replace(string(good), "on_crash = 'preserve'", "on_crash = 'explode'", 1),
	}
	for name, xl := range broken {
		t.Run(name, func(t *testing.T) {
			if xl == string(good) {
				t.Fatal("the breakage did not apply")
			}
			if _, err := xlParse(t, []byte(xl)); err == nil {
				t.Fatalf("xl accepted a broken config:\n%s", xl)
			}
		})
	}
}
