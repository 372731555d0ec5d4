package xen

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"sync"
)

// Info is what labctl reads from `xl info`.
type Info struct {
	Fields     map[string]string // every "key : value" line, values trimmed
	XenVersion string            // "4.19.1"; built from xen_major/minor/extra when xen_version is absent
	VirtCaps   []string          // "pv hvm hap ..." split on spaces; empty when the line is empty or missing
	XenCaps    []string
}

var infoKey = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_]+$`) })

// ParseInfo parses `xl info`: one "key : value" per line. Keys are padded
// to a column; values may be empty, may contain ':' and '=', and some
// (xen_caps, xen_changeset) carry a trailing space.
func ParseInfo(out []byte) (Info, error) {
	info := Info{Fields: map[string]string{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if strings.TrimSpace(text) == "" {
			continue
		}
		k, v, ok := strings.Cut(text, ":")
		k = strings.TrimSpace(k)
		if !ok || !infoKey().MatchString(k) {
			return Info{}, fmt.Errorf("xl info: line %d: expected \"key : value\", got %q", line, text)
		}
		info.Fields[k] = strings.TrimSpace(v)
	}
	if err := sc.Err(); err != nil {
		return Info{}, fmt.Errorf("xl info: %w", err)
	}
	if len(info.Fields) == 0 {
		return Info{}, fmt.Errorf("xl info: expected \"key : value\" lines, got none")
	}
	info.XenVersion = info.Fields["xen_version"]
	if info.XenVersion == "" {
		// Old xl (4.0, 4.1) has no xen_version line; its parts are there.
		major, minor := info.Fields["xen_major"], info.Fields["xen_minor"]
		if major != "" && minor != "" {
			info.XenVersion = major + "." + minor + info.Fields["xen_extra"]
		}
	}
	info.VirtCaps = strings.Fields(info.Fields["virt_caps"])
	info.XenCaps = strings.Fields(info.Fields["xen_caps"])
	return info, nil
}

// HasVirtCap reports whether virt_caps lists c ("hvm", "pv", ...).
func (i Info) HasVirtCap(c string) bool {
	for _, v := range i.VirtCaps {
		if v == c {
			return true
		}
	}
	return false
}
