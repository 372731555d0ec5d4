package xen

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/labctl/labctl/internal/testenv"
	"github.com/labctl/labctl/internal/toolver"
	"github.com/labctl/labctl/vmctl"
)

// seedFixtures adds every fixture whose name has one of the prefixes.
func seedFixtures(f *testing.F, prefixes ...string) {
	entries, err := os.ReadDir(filepath.Join("testdata", "fixtures"))
	if err != nil {
		f.Fatal(err)
	}
	for _, e := range entries {
		for _, p := range prefixes {
			if strings.HasPrefix(e.Name(), p) {
				f.Add(fixture(f, e.Name()))
			}
		}
	}
}

// checkErr: a parser's error names the command and what it expected.
func checkErr(t *testing.T, err error, prefix string) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), "expected") {
		t.Fatalf("error %q does not start with %q and say what was expected", err, prefix)
	}
}

func FuzzParseList(f *testing.F) {
	seedFixtures(f, "list-4", "list-xl")
	f.Add([]byte("Name ID Mem VCPUs State Time(s)\n(null) 1 2 3 --psc- 1.0\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		doms, err := ParseList(in)
		if err != nil {
			checkErr(t, err, "xl list: ")
			return
		}
		for _, d := range doms {
			if d.Name == "" || d.ID < 0 || checkFlags(d.Flags) != nil || d.State() == "" {
				t.Fatalf("bad domain %+v", d)
			}
		}
	})
}

func FuzzParseInfo(f *testing.F) {
	seedFixtures(f, "info-")
	f.Fuzz(func(t *testing.T, in []byte) {
		info, err := ParseInfo(in)
		if err != nil {
			checkErr(t, err, "xl info: ")
			return
		}
		if len(info.Fields) == 0 {
			t.Fatal("no fields without an error")
		}
		for _, c := range info.VirtCaps {
			if c == "" || strings.ContainsAny(c, " \t") {
				t.Fatalf("bad cap %q", c)
			}
		}
		// Whatever the version string, checking it must not panic.
		_, _ = toolver.Xen(info.XenVersion)
	})
}

func FuzzParseListLong(f *testing.F) {
	f.Add(testenv.ReadFile(f, "testdata", "xl-list-l-constructed.json"))
	seedFixtures(f, "list-l-")
	f.Add([]byte(`[{"domid":1,"config":{"nics":[{"mac":"00:16:3e:00:00:01"}]}}]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		doms, err := ParseListLong(in)
		if err != nil {
			checkErr(t, err, "xl list -l: ")
			return
		}
		for _, d := range doms {
			for _, n := range d.NICs {
				if n.MAC != nil && len(n.MAC) != 6 {
					t.Fatalf("bad mac %v", n.MAC)
				}
			}
		}
	})
}

func FuzzParseNetworkList(f *testing.F) {
	seedFixtures(f, "network-list-")
	f.Fuzz(func(t *testing.T, in []byte) {
		vifs, err := ParseNetworkList(in)
		if err != nil {
			checkErr(t, err, "xl network-list: ")
			return
		}
		for _, v := range vifs {
			if len(v.MAC) != 6 || !strings.HasPrefix(v.BEPath, "/") {
				t.Fatalf("bad vif %+v", v)
			}
		}
	})
}

func FuzzParseXL(f *testing.F) {
	seedFixtures(f, "auth_service", "block_test", "ping-", "test-expected")
	g, _ := RenderXL(guest())
	f.Add(g)
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg, err := ParseXL(in)
		if err != nil {
			checkErr(t, err, "xl config: ")
			return
		}
		for k, v := range cfg {
			if k == "" || (v.IsList && v.IsNum) {
				t.Fatalf("bad entry %q: %+v", k, v)
			}
		}
	})
}

// Whatever RenderXL accepts must read back as exactly what was asked for:
// no value can smuggle in a second setting.
func FuzzRenderXL(f *testing.F) {
	f.Add("auth-1", "/var/lib/labctl/auth.xen", "/var/lib/labctl/users.img", "br0", "-l *:info", 32)
	f.Add("x", "/a", "/b", "b", "a'\nkernel = '/evil", 0)
	f.Fuzz(func(t *testing.T, name, kernel, image, bridge, extra string, mem int) {
		g := vmctl.GuestSpec{Name: name, Kernel: kernel, Image: image, Bridge: bridge, Extra: extra, Memory: mem,
			MAC: mustMAC("00:16:3e:00:00:01"), StateDir: "/tmp"}
		out, err := RenderXL(g)
		if err != nil {
			if !strings.Contains(err.Error(), ": ") {
				t.Fatalf("error %q names no field", err)
			}
			return
		}
		if !utf8.Valid(out) && utf8.ValidString(name+kernel+image+bridge+extra) {
			t.Fatal("invalid UTF-8 from valid input")
		}
		cfg, err := ParseXL(out)
		if err != nil {
			t.Fatalf("rendered config does not parse: %v\n%s", err, out)
		}
		want := map[string]string{"name": name, "kernel": kernel, "type": "pvh", "on_crash": "preserve", "extra": extra}
		for k, v := range want {
			if cfg[k].Str != v {
				t.Fatalf("%s = %q, want %q\n%s", k, cfg[k].Str, v, out)
			}
		}
		if len(cfg["disk"].List) != 1 || len(cfg["vif"].List) != 1 {
			t.Fatalf("devices: %+v %+v", cfg["disk"], cfg["vif"])
		}
		if tgt, _ := SpecValue(cfg["disk"].List[0], "target"); tgt != image {
			t.Fatalf("disk target %q, want %q", tgt, image)
		}
		if br, _ := SpecValue(cfg["vif"].List[0], "bridge"); br != bridge {
			t.Fatalf("bridge %q, want %q", br, bridge)
		}
		keys := 7
		if extra != "" {
			keys++
		}
		if len(cfg) != keys {
			t.Fatalf("%d settings, want %d:\n%s", len(cfg), keys, out)
		}
	})
}
