package toolver

import (
	"strings"
	"testing"
)

func TestXen(t *testing.T) {
	tests := []struct {
		in     string
		atLeat bool // >= MinXen()
		err    string
	}{
		{"4.19.1", true, ""}, {"4.10.0", true, ""}, {"4.17.3-pre", true, ""},
		{"4.0.1", false, ""}, {"4.9.4", false, ""},
		{"", false, "expected xen_version"}, {"four", false, "expected xen_version like"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := Xen(tt.in)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (AtLeast("xen", v, MinXen()) == nil) != tt.atLeat {
				t.Fatalf("%s >= %s = %v", v, MinXen(), !tt.atLeat)
			}
		})
	}
}
