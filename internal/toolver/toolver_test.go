package toolver

import (
	"os"
	"strings"
	"testing"
)

func TestDnsmasq(t *testing.T) {
	tests := []struct{ file, want, err string }{
		{"testdata/version-2.90-openwrt.txt", "2.90.0", ""},
		{"testdata/version-2.78-alpine.txt", "2.78.0", ""},
		{"testdata/version-unknown-firstline.txt", "", "not a release version"},
	}
	for _, tt := range tests {
		b, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		v, err := Dnsmasq(string(b))
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%s: err %v, want %q", tt.file, err, tt.err)
			}
			continue
		}
		if err != nil || v.String() != tt.want {
			t.Errorf("%s: %v %v, want %s", tt.file, v, err, tt.want)
		}
	}
	v, _ := Dnsmasq("Dnsmasq version 2.78  Copyright")
	if AtLeast("dnsmasq", v, MinDnsmasq()) == nil {
		t.Error("2.78 passes the 2.80 minimum")
	}
}

func TestIPTables(t *testing.T) {
	tests := []struct{ in, v, backend string }{
		{"iptables v1.8.9 (nf_tables)\n", "1.8.9", "nf_tables"},
		{"iptables v1.8.7 (legacy)", "1.8.7", "legacy"},
		{"iptables v1.6.1", "1.6.1", ""},
	}
	for _, tt := range tests {
		v, b, err := IPTables(tt.in)
		if err != nil || v.String() != tt.v || b != tt.backend {
			t.Errorf("IPTables(%q) = %v %q %v", tt.in, v, b, err)
		}
	}
	if _, _, err := IPTables("ip6tables-restore v1.8"); err == nil {
		t.Error("junk accepted")
	}
}

func FuzzVersions(f *testing.F) {
	f.Add("Dnsmasq version 2.90  Copyright (c) 2000-2024 Simon Kelley")
	f.Add("iptables v1.8.9 (nf_tables)")
	f.Fuzz(func(t *testing.T, s string) {
		if v, err := Dnsmasq(s); err == nil && v == nil {
			t.Fatal("nil version without error")
		}
		if v, _, err := IPTables(s); err == nil && v == nil {
			t.Fatal("nil version without error")
		}
	})
}
