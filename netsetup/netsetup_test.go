package netsetup

import (
	"flag"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs from the golden file (go test -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

func articleDnsmasq(noResolv bool) DnsmasqConfig {
	return DnsmasqConfig{
		Lab: "mirage", Bridge: "br0", Router: netip.MustParseAddr("192.168.77.2"),
		Subnet:     netip.MustParsePrefix("192.168.77.0/24"),
		RangeStart: netip.MustParseAddr("192.168.77.3"), RangeEnd: netip.MustParseAddr("192.168.77.200"),
		Lease: time.Hour, Dir: "/var/lib/labctl/mirage/dnsmasq", NoResolv: noResolv,
	}
}

func TestDnsmasqConfigGolden(t *testing.T) {
	golden(t, "dnsmasq.conf", articleDnsmasq(false).Render())
	golden(t, "dnsmasq-sim.conf", articleDnsmasq(true).Render())
	conf := string(articleDnsmasq(false).Render())
	// The properties the lab depends on, stated once more in words.
	for _, must := range []string{"interface=br0\n", "except-interface=lo\n", "bind-dynamic\n", "dhcp-range=192.168.77.3,192.168.77.200,255.255.255.0,3600\n"} {
		if !strings.Contains(conf, must) {
			t.Errorf("config lacks %q", must)
		}
	}
}

func TestRulesGolden(t *testing.T) {
	rs := DesiredRules("mirage", "br0", netip.MustParsePrefix("192.168.77.0/24"), true)
	cold := Diff(rs, Saved{Tables: map[string]*SavedTable{}})
	golden(t, "rules-cold.restore", RestorePayload(rs, cold))
	noNAT := DesiredRules("mirage", "br0", netip.MustParsePrefix("192.168.77.0/24"), false)
	golden(t, "rules-nonat-cold.restore", RestorePayload(noNAT, Diff(noNAT, Saved{Tables: map[string]*SavedTable{}})))
}

// A dump that holds exactly the rules converges to an empty diff; each
// kind of damage gives the smallest repair.
func TestRuleDiff(t *testing.T) {
	rs := DesiredRules("mirage", "br0", netip.MustParsePrefix("192.168.77.0/24"), true)
	full := string(RestorePayload(rs, Diff(rs, Saved{Tables: map[string]*SavedTable{}})))
	// Turn the restore payload into what iptables-save would print.
	save := func(payload string) []byte {
		var b strings.Builder
		for _, l := range strings.Split(payload, "\n") {
			switch {
			case strings.HasPrefix(l, "-I "):
				f := strings.SplitN(l, " ", 4)
				l = "-A " + f[1] + " " + f[3]
			case strings.HasPrefix(l, "*filter"):
				l += "\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]"
			case strings.HasPrefix(l, "*nat"):
				l += "\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [0:0]"
			}
			b.WriteString(l + "\n")
		}
		return []byte(b.String())
	}
	converged := save(full)
	tests := []struct {
		name                     string
		dump                     string
		rewrite, add, deleteJump int
	}{
		{"converged", string(converged), 0, 0, 0},
		{"nothing", "", 2, 2, 0},
		{"jump flushed", strings.Replace(string(converged), `-A POSTROUTING -m comment --comment "labctl:mirage" -j LABCTL-POST`+"\n", "", 1), 0, 1, 0},
		{"rule removed", strings.Replace(string(converged), `-A LABCTL-POST -s 192.168.77.0/24 ! -d 192.168.77.0/24 -m comment --comment "labctl:mirage" -j MASQUERADE`+"\n", "", 1), 1, 0, 0},
		{"foreign rule in our chain", strings.Replace(string(converged), ":LABCTL-FWD - [0:0]\n", ":LABCTL-FWD - [0:0]\n-A LABCTL-FWD -j DROP\n", 1), 1, 0, 0},
		{"duplicate jump", strings.Replace(string(converged), `-A FORWARD -m comment --comment "labctl:mirage" -j LABCTL-FWD`+"\n", `-A FORWARD -m comment --comment "labctl:mirage" -j LABCTL-FWD`+"\n"+`-A FORWARD -m comment --comment "labctl:mirage" -j LABCTL-FWD`+"\n", 1), 0, 0, 1},
		{"stale lab's jump", strings.Replace(string(converged), "*filter\n", "*filter\n-A FORWARD -m comment --comment \"labctl:old\" -j LABCTL-FWD\n", 1), 0, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have, err := ParseSave([]byte(tt.dump))
			if err != nil {
				t.Fatal(err)
			}
			d := Diff(rs, have)
			if len(d.Rewrite) != tt.rewrite || len(d.AddJumps) != tt.add || len(d.DeleteJumps) != tt.deleteJump {
				t.Fatalf("diff %+v, want rewrite %d add %d delete %d", d, tt.rewrite, tt.add, tt.deleteJump)
			}
			if d.Empty() != (tt.rewrite+tt.add+tt.deleteJump == 0) {
				t.Fatalf("Empty() = %v", d.Empty())
			}
		})
	}
}

func TestParseSaveRejects(t *testing.T) {
	for _, in := range []string{
		"-A FORWARD -j ACCEPT\n",             // rule outside a table
		"*filter\n-A FORWARD -j ACCEPT\n",    // no COMMIT
		"*filter\n*nat\nCOMMIT\n",            // nested table
		"COMMIT\n",                           // COMMIT outside
		"*filter\n:FORWARD\nCOMMIT\n",        // chain without policy
		"*filter\n[0:0] -A X -j Y\nCOMMIT\n", // counters form
	} {
		if _, err := ParseSave([]byte(in)); err == nil || !strings.Contains(err.Error(), "iptables-save") {
			t.Errorf("ParseSave(%q) = %v, want an error naming iptables-save", in, err)
		}
	}
}

func FuzzParseSave(f *testing.F) {
	f.Add([]byte("*nat\n:POSTROUTING ACCEPT [0:0]\n-A POSTROUTING -j LABCTL-POST\nCOMMIT\n"))
	f.Add([]byte("# Generated\n*filter\n:INPUT ACCEPT [1:2]\nCOMMIT\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSave(b)
		if err != nil {
			return
		}
		rs := DesiredRules("x", "br0", netip.MustParsePrefix("10.0.0.0/24"), true)
		d := Diff(rs, s)
		RestorePayload(rs, d)
	})
}

func TestSplitSpec(t *testing.T) {
	got, err := SplitSpec(`-s 1.2.3.0/24 -m comment --comment "labctl:a b" -j RETURN`)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"-s", "1.2.3.0/24", "-m", "comment", "--comment", "labctl:a b", "-j", "RETURN"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("got %q", got)
	}
	if _, err := SplitSpec(`--comment "open`); err == nil {
		t.Fatal("unterminated quote accepted")
	}
}

func TestParseLeases(t *testing.T) {
	tests := []struct {
		file  string
		n     int
		first string // MAC or IAID of the first lease
	}{
		{"leases-exporter-test.leases", 2, "ff:ee:dd:cc:bb:aa"},
		{"leases-libremesh-duid-ipv6-partial.leases", 2, "28:d2:44:d8:3a:3b"},
		{"leases-libremesh-star-hostnames.leases", 2, "12:34:65:3d:ce:2b"},
		{"leases-readme-infinite-expiry.leases", 3, "11:11:11:11:11:11"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ls, err := ParseLeases(testenv.ReadFile(t, "testdata", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			if len(ls) != tt.n || ls[0].MAC.String() != tt.first {
				t.Fatalf("got %d leases, first %v", len(ls), ls)
			}
		})
	}
	b, _ := os.ReadFile("testdata/leases-libremesh-duid-ipv6-partial.leases")
	ls, _ := ParseLeases(b)
	if v6 := ls[1]; v6.MAC != nil || v6.IAID != 1276192316 || !v6.IP.Is6() {
		t.Errorf("IPv6 lease parsed as %+v", v6)
	}
	b, _ = os.ReadFile("testdata/leases-readme-infinite-expiry.leases")
	ls, _ = ParseLeases(b)
	if !ls[2].Expiry.IsZero() || ls[2].Expired(time.Now()) || ls[1].Hostname != "Client2" || ls[1].ClientID != "" {
		t.Errorf("infinite/star fields parsed as %+v", ls)
	}
	if !ls[0].Expired(time.Now()) {
		t.Errorf("a 2017 lease is not expired: %+v", ls[0])
	}
}

func TestParseLeasesRejects(t *testing.T) {
	for _, in := range []string{
		"1 aa:bb:cc:dd:ee:ff 10.0.0.1 host\n",       // 4 fields
		"x aa:bb:cc:dd:ee:ff 10.0.0.1 host *\n",     // expiry
		"-5 aa:bb:cc:dd:ee:ff 10.0.0.1 host *\n",    // negative
		"1 notamac 10.0.0.1 host *\n",               // mac
		"1 aa:bb:cc:dd:ee:ff 10.0.0.300 host *\n",   // ip
		"1 aa:bb:cc:dd:ee:ff fe80::1%eth0 host *\n", // zone
		"duid\n", // duid without value
		"1 12345678901234567890 fd00::1 host duid\n", // IAID overflow
	} {
		if _, err := ParseLeases([]byte(in)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("ParseLeases(%q) = %v, want an error naming line 1", in, err)
		}
	}
}

func TestLeaseFor(t *testing.T) {
	now := time.Unix(2000, 0)
	mac, _ := net.ParseMAC("00:16:3e:00:00:01")
	ls, err := ParseLeases([]byte("1000 00:16:3e:00:00:01 10.0.0.5 old *\n3000 00:16:3e:00:00:01 10.0.0.6 new *\n3000 00:16:3e:00:00:02 10.0.0.7 other *\n"))
	if err != nil {
		t.Fatal(err)
	}
	l, ok := LeaseFor(ls, mac, now)
	if !ok || l.IP.String() != "10.0.0.6" {
		t.Fatalf("LeaseFor = %+v %v, want the unexpired 10.0.0.6", l, ok)
	}
	if _, ok := LeaseFor(ls, mac, time.Unix(4000, 0)); ok {
		t.Fatal("expired leases returned")
	}
}

func FuzzParseLeases(f *testing.F) {
	for _, n := range []string{"leases-exporter-test.leases", "leases-libremesh-duid-ipv6-partial.leases", "leases-readme-infinite-expiry.leases"} {
		b, _ := os.ReadFile(filepath.Join("testdata", n))
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ls, err := ParseLeases(b)
		if err != nil {
			return
		}
		for _, l := range ls {
			if !l.IP.IsValid() || (l.MAC == nil) == l.IP.Is4() {
				t.Fatalf("accepted inconsistent lease %+v", l)
			}
		}
	})
}
