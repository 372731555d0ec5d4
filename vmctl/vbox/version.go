// Package vbox reads VirtualBox's state through VBoxManage: its version,
// a VM's settings (machine-readable and the human-readable NIC lines),
// host-only interfaces and networks, DHCP servers, and the host-only range
// policy in /etc/vbox/networks.conf.
//
// Every parser works on recorded real outputs (testdata/, sources in
// testdata/README.md) and tolerates the quirks seen there.
package vbox

import (
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"strconv"
	"strings"
)

// Version is a parsed `VBoxManage --version`.
type Version struct {
	Major, Minor, Patch int
	// Suffix is a distribution or build tag without the underscore
	// ("Debian", "OSE", "Ubuntu", "BETA1"); empty for Oracle builds.
	Suffix string
	// Revision is the SVN revision after 'r' (0 when absent).
	Revision int
	// Raw is the version line as printed.
	Raw string
}

// versionRE matches the one version line: 6.0.12r133076, 5.1.6_Debianr110634,
// 7.0.16_Ubuntur162802, 4.3.10_OSE. The suffix is lazy so that the trailing
// r<digits> is taken as the revision, not as part of the suffix.
var versionRE = regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)(?:_([A-Za-z0-9]+?))?(?:r(\d+))?$`)

// ErrNoVersion means no line of the output looked like a version.
var ErrNoVersion = errors.New("no VirtualBox version in output")

// ParseVersion finds the version in `VBoxManage --version` output. The tool
// prints warnings (e.g. "vboxdrv kernel module is not loaded") before the
// version and still exits 0, so the last matching line wins.
func ParseVersion(out string) (Version, error) {
	lines := strings.Split(out, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		line := strings.TrimSpace(lines[i])
		m := versionRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		v := Version{Suffix: m[4], Raw: line}
		var err error
		if v.Major, err = atoiSmall(m[1]); err != nil {
			return Version{}, fmt.Errorf("parse VirtualBox version %q: %w", line, err)
		}
		if v.Minor, err = atoiSmall(m[2]); err != nil {
			return Version{}, fmt.Errorf("parse VirtualBox version %q: %w", line, err)
		}
		if v.Patch, err = atoiSmall(m[3]); err != nil {
			return Version{}, fmt.Errorf("parse VirtualBox version %q: %w", line, err)
		}
		if m[5] != "" {
			if v.Revision, err = strconv.Atoi(m[5]); err != nil {
				return Version{}, fmt.Errorf("parse VirtualBox revision %q: %w", line, err)
			}
		}
		return v, nil
	}
	return Version{}, fmt.Errorf("%w: %q", ErrNoVersion, firstLine(out))
}

// atoiSmall rejects absurd component values so comparisons stay meaningful.
func atoiSmall(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n > 1_000_000 {
		return 0, fmt.Errorf("component %d out of range", n)
	}
	return n, nil
}

// String is the plain dotted version ("6.1.28").
func (v Version) String() string {
	return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
}

// Compare returns -1, 0 or 1 comparing v with major.minor.patch.
func (v Version) Compare(major, minor, patch int) int {
	for _, d := range [][2]int{{v.Major, major}, {v.Minor, minor}, {v.Patch, patch}} {
		if d[0] < d[1] {
			return -1
		}
		if d[0] > d[1] {
			return 1
		}
	}
	return 0
}

// AtLeast reports v >= major.minor.patch.
func (v Version) AtLeast(major, minor, patch int) bool {
	return v.Compare(major, minor, patch) >= 0
}

// RestrictsHostOnlyRanges reports whether this VirtualBox, on this host,
// restricts host-only addresses to /etc/vbox/networks.conf: 6.1.28 and
// later, except on Windows and on macOS with 7.x (EnforcesNetworksConf).
func (v Version) RestrictsHostOnlyRanges() bool { return v.EnforcesNetworksConf(runtime.GOOS) }

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 120 {
		s = s[:120] + "..."
	}
	return s
}
