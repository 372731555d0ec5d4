package vbox

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
)

// NetworksConfPath is where VirtualBox (Linux, macOS, Solaris hosts) reads
// the ranges host-only adapters may use.
const NetworksConfPath = "/etc/vbox/networks.conf"

// DefaultHostOnlyRanges apply when networks.conf is absent: VirtualBox
// 6.1.28+ then allows only 192.168.56.0/21 and, for IPv6, link-local.
var DefaultHostOnlyRanges = []netip.Prefix{
	netip.MustParsePrefix("192.168.56.0/21"),
	netip.MustParsePrefix("fe80::/10"),
}

// NetworksConf is a parsed /etc/vbox/networks.conf.
type NetworksConf struct {
	// Present is false when the file does not exist: the defaults apply.
	Present bool
	Path    string
	Ranges  []Range
	// Ignored lists lines VirtualBox does not read as ranges (comments,
	// lines not starting with '*'), with their 1-based numbers.
	Ignored []string
}

// Range is one allowed prefix and the line it came from.
type Range struct {
	Prefix netip.Prefix
	Line   int
}

// ParseNetworksConf parses the file's content: lines "* <prefix> [<prefix>...]";
// several lines add up; IPv4 and IPv6 prefixes may be mixed.
func ParseNetworksConf(content string) (NetworksConf, error) {
	nc := NetworksConf{Present: true}
	for i, line := range strings.Split(strings.ReplaceAll(content, "\r\n", "\n"), "\n") {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if fields[0] != "*" {
			nc.Ignored = append(nc.Ignored, fmt.Sprintf("%d: %s", i+1, strings.TrimSpace(line)))
			continue
		}
		for _, f := range fields[1:] {
			p, err := netip.ParsePrefix(f)
			if err != nil {
				return nc, fmt.Errorf("networks.conf line %d: range %q: %w", i+1, f, err)
			}
			nc.Ranges = append(nc.Ranges, Range{Prefix: p.Masked(), Line: i + 1})
		}
	}
	return nc, nil
}

// ReadNetworksConf reads path; a missing file is not an error (Present false).
func ReadNetworksConf(path string) (NetworksConf, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return NetworksConf{Path: path}, nil
	}
	if err != nil {
		return NetworksConf{Path: path}, fmt.Errorf("read %s: %w", path, err)
	}
	nc, err := ParseNetworksConf(string(b))
	nc.Path = path
	if err != nil {
		return nc, fmt.Errorf("%s: %w", path, err)
	}
	return nc, nil
}

// Effective returns the ranges in force: the file's, or the defaults when
// the file is absent.
func (nc NetworksConf) Effective() []Range {
	if nc.Present {
		return nc.Ranges
	}
	rs := make([]Range, len(DefaultHostOnlyRanges))
	for i, p := range DefaultHostOnlyRanges {
		rs[i] = Range{Prefix: p}
	}
	return rs
}

// AllowsPrefix reports whether the whole prefix lies inside one allowed
// range, and which. A file with no ranges allows nothing.
func (nc NetworksConf) AllowsPrefix(p netip.Prefix) (Range, bool) {
	if !p.IsValid() {
		return Range{}, false
	}
	p = p.Masked()
	for _, r := range nc.Effective() {
		if r.Prefix.Bits() <= p.Bits() && r.Prefix.Contains(p.Addr()) {
			return r, true
		}
	}
	return Range{}, false
}

// AllowsAddr reports whether one address lies inside an allowed range.
func (nc NetworksConf) AllowsAddr(a netip.Addr) (Range, bool) {
	for _, r := range nc.Effective() {
		if r.Prefix.Contains(a.Unmap()) {
			return r, true
		}
	}
	return Range{}, false
}

// FixLine is the one-line command that allows p.
func FixLine(p netip.Prefix) string {
	return fmt.Sprintf("echo '* %s' | sudo tee -a %s", p.Masked(), NetworksConfPath)
}
