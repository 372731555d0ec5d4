package doctor

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseProcNetRoute(t *testing.T) {
	p, a := netip.MustParsePrefix, netip.MustParseAddr
	tests := []struct {
		file    string
		in      string
		want    []Route
		wantErr string
	}{
		{file: "proc-net-route-recorded-debian12-container.txt", want: []Route{
			{Dst: p("0.0.0.0/0"), Dev: "eth0", Gateway: a("192.0.2.1")},
			{Dst: p("192.0.2.0/24"), Dev: "eth0"},
		}},
		{file: "proc-net-route-constructed-laptop-lab.txt", want: []Route{
			{Dst: p("0.0.0.0/0"), Dev: "wlan0", Gateway: a("192.168.1.1"), Metric: 600},
			{Dst: p("172.17.0.0/16"), Dev: "docker0"},
			{Dst: p("192.168.1.0/24"), Dev: "wlan0", Metric: 600},
			{Dst: p("192.168.77.0/24"), Dev: "vboxnet4"},
		}},
		{file: "proc-net-route-constructed-lab-route-down.txt", want: []Route{
			{Dst: p("0.0.0.0/0"), Dev: "wlan0", Gateway: a("192.168.1.1"), Metric: 600},
			{Dst: p("172.17.0.0/16"), Dev: "docker0"},
			{Dst: p("192.168.1.0/24"), Dev: "wlan0", Metric: 600},
		}},
		{in: "", want: nil},
		{in: "Iface\tDestination\n", want: nil},
		{in: "eth0\t0000000G\t00000000\t0001\t0\t0\t0\t00000000\n", wantErr: "destination"},
		{in: "eth0\t00000000\t00000000\t0001\t0\t0\t0\t00FF00FF\n", wantErr: "non-contiguous"},
		{in: "eth0\t00000000\t00000000\n", wantErr: "fields"},
	}
	for _, tt := range tests {
		name := tt.file
		if name == "" {
			name = tt.in
		}
		t.Run(name, func(t *testing.T) {
			in := tt.in
			if tt.file != "" {
				in = readTestdata(t, tt.file)
			}
			got, err := ParseProcNetRoute(in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %+v\nwant %+v", got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("[%d] = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestLookupRoute(t *testing.T) {
	p := netip.MustParsePrefix
	rs := []Route{
		{Dst: p("0.0.0.0/0"), Dev: "wlan0", Metric: 600},
		{Dst: p("192.168.77.0/24"), Dev: "vboxnet4", Metric: 0},
		{Dst: p("192.168.77.0/24"), Dev: "vboxnet9", Metric: 100},
		{Dst: p("192.168.77.128/25"), Dev: "tun0", Metric: 50},
	}
	tests := []struct {
		addr string
		dev  string
	}{
		{"192.168.77.2", "vboxnet4"},   // lower metric wins among equals
		{"192.168.77.200", "tun0"},     // longer prefix wins
		{"8.8.8.8", "wlan0"},           // default
		{"192.168.78.1", "wlan0"},      // just outside
		{"192.168.77.127", "vboxnet4"}, // edge of the /25
	}
	for _, tt := range tests {
		r, ok := LookupRoute(rs, netip.MustParseAddr(tt.addr))
		if !ok || r.Dev != tt.dev {
			t.Errorf("LookupRoute(%s) = %+v, %v; want %s", tt.addr, r, ok, tt.dev)
		}
	}
	if _, ok := LookupRoute(rs[1:2], netip.MustParseAddr("10.0.0.1")); ok {
		t.Error("found a route that does not exist")
	}
}

// TestSystemNet reads this machine's real interfaces and routes.
func TestSystemNet(t *testing.T) {
	ifs, err := SystemNet{}.Interfaces(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lo := false
	for _, i := range ifs {
		for _, a := range i.Addrs {
			if a == netip.MustParsePrefix("127.0.0.1/8") {
				lo = i.Up
			}
		}
	}
	if !lo {
		t.Fatalf("no up interface with 127.0.0.1/8 in %+v", ifs)
	}
	if _, err := os.Stat("/proc/net/route"); err != nil {
		t.Skip("no /proc/net/route")
	}
	if _, err := (SystemNet{}).Routes(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := (SystemNet{ProcNetRoute: "/nonexistent"}).Routes(context.Background()); err == nil {
		t.Fatal("missing route file accepted")
	}
}

func FuzzParseProcNetRoute(f *testing.F) {
	files, _ := filepath.Glob("testdata/proc-net-route-*")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		rs, err := ParseProcNetRoute(s)
		if err != nil {
			return
		}
		for _, r := range rs {
			if !r.Dst.IsValid() || r.Dst != r.Dst.Masked() {
				t.Fatalf("bad route %+v", r)
			}
			if got, ok := LookupRoute([]Route{r}, r.Dst.Addr()); !ok || got != r {
				t.Fatalf("route %+v does not cover its own network", r)
			}
		}
	})
}
