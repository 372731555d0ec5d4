package vbox

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addFixtures seeds a fuzz corpus with every testdata file matching glob.
func addFixtures(f *testing.F, glob string) {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", glob))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no fixtures for %s: %v", glob, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
}

func FuzzParseVersion(f *testing.F) {
	addFixtures(f, "version-*")
	f.Add("6.1.30_rpmfusionr148432")
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			return
		}
		// A parsed version must come from a line of the input and
		// round-trip through its own Raw line.
		if !strings.Contains(s, v.Raw) {
			t.Fatalf("Raw %q not in input", v.Raw)
		}
		again, err := ParseVersion(v.Raw)
		if err != nil || again != v {
			t.Fatalf("reparse %q = %+v, %v; want %+v", v.Raw, again, err, v)
		}
	})
}

func FuzzParseMachineReadable(f *testing.F) {
	addFixtures(f, "showvminfo-machinereadable-*")
	f.Add("a=\"x\ny\"\n\"k k\"=\"v\"\n")
	f.Fuzz(func(t *testing.T, s string) {
		mi, err := ParseMachineReadable(s)
		if err != nil {
			return
		}
		for k := range mi.Values {
			if k == "" || strings.Contains(k, "\n") {
				t.Fatalf("bad key %q", k)
			}
		}
		_, _ = mi.NestedHWVirt()
		for i := 1; i <= 8; i++ {
			mi.NIC(i)
		}
	})
}

func FuzzParseNICLines(f *testing.F) {
	addFixtures(f, "showvminfo-human-*")
	f.Fuzz(func(t *testing.T, s string) {
		nics, err := ParseNICLines(s)
		if err != nil {
			return
		}
		for _, n := range nics {
			if n.Index < 0 || n.Disabled && n.MAC != "" {
				t.Fatalf("inconsistent %+v", n)
			}
		}
	})
}

func FuzzParseHostOnlyIfs(f *testing.F) {
	addFixtures(f, "list-hostonlyifs-*")
	f.Fuzz(func(t *testing.T, s string) {
		ifs, err := ParseHostOnlyIfs(s)
		if err != nil {
			return
		}
		for _, h := range ifs {
			if p := h.Prefix(); p.IsValid() && !p.Addr().Is4() {
				t.Fatalf("IPv4 prefix %v", p)
			}
		}
	})
}

func FuzzParseHostOnlyNets(f *testing.F) {
	addFixtures(f, "list-hostonlynets-*")
	f.Fuzz(func(t *testing.T, s string) {
		nets, err := ParseHostOnlyNets(s)
		if err != nil {
			return
		}
		for _, n := range nets {
			_ = n.Prefix()
		}
	})
}

func FuzzParseDHCPServers(f *testing.F) {
	addFixtures(f, "list-dhcpservers-*")
	f.Fuzz(func(t *testing.T, s string) {
		srvs, err := ParseDHCPServers(s)
		if err != nil {
			return
		}
		for _, d := range srvs {
			if p := d.Prefix(); p.IsValid() && p != p.Masked() {
				t.Fatalf("unmasked prefix %v", p)
			}
			_ = d.Interface()
		}
	})
}

func FuzzParseNetworksConf(f *testing.F) {
	addFixtures(f, "networks-conf-*")
	f.Fuzz(func(t *testing.T, s string) {
		nc, err := ParseNetworksConf(s)
		if err != nil {
			return
		}
		// Every range a file lists allows itself.
		for _, r := range nc.Ranges {
			if _, ok := nc.AllowsPrefix(r.Prefix); !ok {
				t.Fatalf("range %v does not allow itself", r.Prefix)
			}
		}
		_, _ = nc.AllowsAddr(netip.MustParseAddr("192.168.77.1"))
	})
}
