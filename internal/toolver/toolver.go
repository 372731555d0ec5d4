// Package toolver parses the versions tools print and checks them against
// labctl's minimums with hashicorp/go-version.
package toolver

import (
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/hashicorp/go-version"
)

// Minimums labctl relies on: dnsmasq's bind-dynamic and dhcp-hostsfile
// reload (2.63+, but 2.80 is the oldest tested here), iptables-restore
// --noflush --wait (1.6.2+).
var (
	MinDnsmasq  = sync.OnceValue(func() *version.Version { return version.Must(version.NewVersion("2.80")) })
	MinIPTables = sync.OnceValue(func() *version.Version { return version.Must(version.NewVersion("1.6.2")) })
)

// Regular expressions are compiled on first use: every labctl start (and
// every agent run on dom0) would otherwise pay for all of them.
var (
	dnsmasqRE  = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^Dnsmasq version (\S+)`) })
	iptablesRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^iptables v(\d+(?:\.\d+)*)(?: \(([a-z_]+)\))?`) })
)

// Dnsmasq parses `dnsmasq --version` ("Dnsmasq version 2.90  Copyright …").
func Dnsmasq(out string) (*version.Version, error) {
	line := firstLine(out)
	m := dnsmasqRE().FindStringSubmatch(line)
	if m == nil {
		return nil, fmt.Errorf("dnsmasq --version: expected \"Dnsmasq version X.Y\", got %q", line)
	}
	v, err := version.NewVersion(m[1])
	if err != nil {
		return nil, fmt.Errorf("dnsmasq --version: %q is not a release version (built from git without a VERSION file?)", m[1])
	}
	return v, nil
}

// IPTables parses `iptables --version` ("iptables v1.8.9 (nf_tables)") and
// returns the version and backend ("nf_tables", "legacy", or "" for
// versions that do not say).
func IPTables(out string) (*version.Version, string, error) {
	line := firstLine(out)
	m := iptablesRE().FindStringSubmatch(line)
	if m == nil {
		return nil, "", fmt.Errorf("iptables --version: expected \"iptables vX.Y.Z (backend)\", got %q", line)
	}
	v, err := version.NewVersion(m[1])
	if err != nil {
		return nil, "", fmt.Errorf("iptables --version: %w", err)
	}
	return v, m[2], nil
}

// AtLeast reports an error naming the tool when v is below min.
func AtLeast(tool string, v, min *version.Version) error {
	if v.LessThan(min) {
		return fmt.Errorf("%s %s is older than %s, the oldest labctl supports: upgrade it", tool, v, min)
	}
	return nil
}

func firstLine(s string) string {
	// Some tools print warnings first; the version line is the first
	// that looks like one, so skip blank lines only.
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			return l
		}
	}
	return ""
}
