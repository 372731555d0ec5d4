package netsetup

import (
	"strings"
	"testing"
)

// Paths written into dnsmasq's config must read back unchanged (issue 10
// item 4): a '#' after a space, a newline, a quote or a comma changes
// what dnsmasq reads, so such paths are refused.
func TestCheckConfPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/var/lib/labctl/lab", true},
		{"/tmp/v.1/st_x-y+z@2/lab", true},
		{"/tmp/a #b/lab", false},
		{"/tmp/a#b/lab", false},
		{"/tmp/a b/lab", false},
		{"/tmp/a\nlog-facility=/etc/x/lab", false},
		{"/tmp/a\rb", false},
		{"/tmp/a\tb", false},
		{`/tmp/"a"/lab`, false},
		{`/tmp/a\b/lab`, false},
		{"/tmp/a,b/lab", false},
		{"/" + strings.Repeat("x", 990), false},
	} {
		err := CheckConfPath(tc.path)
		if (err == nil) != tc.ok {
			t.Errorf("CheckConfPath(%q) = %v, want ok=%v", tc.path, err, tc.ok)
		}
	}
}
