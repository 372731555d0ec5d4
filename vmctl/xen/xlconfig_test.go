package xen

import (
	"bytes"
	"flag"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/vmctl"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/")

func mustMAC(s string) net.HardwareAddr {
	m, err := net.ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

// golden compares got with testdata/golden/<name>, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from golden file:\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func guest() vmctl.GuestSpec {
	return vmctl.GuestSpec{
		Lab:      "lab",
		Name:     "auth-1",
		Index:    1,
		MAC:      mustMAC("00:16:3e:5a:01:c3"),
		Bridge:   "br0",
		Kernel:   "/var/lib/labctl/lab/build/auth/dist/auth.xen",
		Image:    "/var/lib/labctl/lab/images/users.img",
		StateDir: "/var/lib/labctl/lab/guests/auth-1",
	}
}

func TestRenderXLGolden(t *testing.T) {
	tests := []struct {
		name string
		mod  func(*vmctl.GuestSpec)
	}{
		{"default-memory.xl", func(*vmctl.GuestSpec) {}},
		{"memory-and-extra.xl", func(g *vmctl.GuestSpec) {
			g.Memory = 64
			g.Extra = "--ipv4-only=true -l *:debug"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := guest()
			tt.mod(&g)
			got, err := RenderXL(g)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, tt.name, got)

			// Whatever the golden file says, the values must read back.
			cfg, err := ParseXL(got)
			if err != nil {
				t.Fatal(err)
			}
			mem := int64(g.Memory)
			if mem == 0 {
				mem = DefaultMemoryMB
			}
			checks := []struct{ key, got, want string }{
				{"name", cfg["name"].Str, g.Name},
				{"type", cfg["type"].Str, "pvh"},
				{"kernel", cfg["kernel"].Str, g.Kernel},
				{"on_crash", cfg["on_crash"].Str, "preserve"},
				{"extra", cfg["extra"].Str, g.Extra},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %q, want %q", c.key, c.got, c.want)
				}
			}
			if cfg["memory"].Num != mem {
				t.Errorf("memory = %d, want %d", cfg["memory"].Num, mem)
			}
			if v := cfg["vif"].List; len(v) != 1 || v[0] != "bridge=br0,mac=00:16:3e:5a:01:c3" {
				t.Errorf("vif = %q", v)
			}
			d := cfg["disk"].List
			if len(d) != 1 {
				t.Fatalf("disk = %q", d)
			}
			for key, want := range map[string]string{"format": "raw", "vdev": "xvdb", "access": "ro", "target": g.Image} {
				if got, _ := SpecValue(d[0], key); got != want {
					t.Errorf("disk %s = %q, want %q", key, got, want)
				}
			}
			if _, ok := cfg["extra"]; ok != (g.Extra != "") {
				t.Errorf("extra present = %v with Extra %q", ok, g.Extra)
			}
		})
	}
}

func TestRenderXLRejects(t *testing.T) {
	tests := []struct {
		name  string
		mod   func(*vmctl.GuestSpec)
		field string
	}{
		{"relative kernel", func(g *vmctl.GuestSpec) { g.Kernel = "dist/auth.xen" }, "Kernel: expected an absolute path"},
		{"empty kernel", func(g *vmctl.GuestSpec) { g.Kernel = "" }, "Kernel: expected an absolute path, got none"},
		{"dot-dot kernel", func(g *vmctl.GuestSpec) { g.Kernel = "/var/lib/../auth.xen" }, "Kernel: expected a clean path"},
		{"quote in kernel", func(g *vmctl.GuestSpec) { g.Kernel = "/var/it's/auth.xen" }, "Kernel: quotes"},
		{"relative image", func(g *vmctl.GuestSpec) { g.Image = "users.img" }, "Image: expected an absolute path"},
		{"comma in image", func(g *vmctl.GuestSpec) { g.Image = "/a,b/users.img" }, "Image: commas and spaces"},
		{"space in image", func(g *vmctl.GuestSpec) { g.Image = "/a b/users.img" }, "Image: commas and spaces"},
		{"newline in image", func(g *vmctl.GuestSpec) { g.Image = "/a\n/users.img" }, "Image: newlines"},
		{"quote in extra", func(g *vmctl.GuestSpec) { g.Extra = "--name='x'" }, "Extra: quotes"},
		{"double quote in extra", func(g *vmctl.GuestSpec) { g.Extra = `--name="x"` }, "Extra: quotes"},
		{"backslash in extra", func(g *vmctl.GuestSpec) { g.Extra = `a\b` }, "Extra: quotes and backslashes"},
		{"newline in extra", func(g *vmctl.GuestSpec) { g.Extra = "a\nkernel = '/evil'" }, "Extra: newlines"},
		{"quote in name", func(g *vmctl.GuestSpec) { g.Name = "a'b" }, "Name: expected"},
		{"empty name", func(g *vmctl.GuestSpec) { g.Name = "" }, "Name: expected"},
		{"bad bridge", func(g *vmctl.GuestSpec) { g.Bridge = "br0,script=/tmp/x" }, "Bridge: expected"},
		{"long bridge", func(g *vmctl.GuestSpec) { g.Bridge = "abcdefghijklmnop" }, "Bridge: expected"},
		{"no mac", func(g *vmctl.GuestSpec) { g.MAC = nil }, "MAC: expected 6 bytes starting 00:16:3e"},
		{"foreign oui", func(g *vmctl.GuestSpec) { g.MAC = mustMAC("52:54:00:12:34:56") }, "MAC: expected 6 bytes starting 00:16:3e"},
		{"negative memory", func(g *vmctl.GuestSpec) { g.Memory = -1 }, "Memory: expected MiB > 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := guest()
			tt.mod(&g)
			out, err := RenderXL(g)
			if err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("RenderXL = %q, %v; want error containing %q", out, err, tt.field)
			}
		})
	}
}

func TestXLFile(t *testing.T) {
	if got := XLFile(guest()); got != "/var/lib/labctl/lab/guests/auth-1/auth-1.xl" {
		t.Fatalf("XLFile = %q", got)
	}
}
