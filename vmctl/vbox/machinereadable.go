package vbox

import (
	"fmt"
	"strconv"
	"strings"
)

// MachineInfo is `VBoxManage showvminfo VM --machinereadable`.
type MachineInfo struct {
	// Values maps each key (quotes removed) to its value (quotes removed,
	// \" and \\ unescaped, continuation lines of multi-line values joined
	// with "\n").
	Values map[string]string
	// Other keeps the lines that are not key=value (VirtualBox 7.0 prints
	// "Encryption:     disabled" and " rec_screen0"), trimmed.
	Other []string
}

// ParseMachineReadable parses showvminfo --machinereadable output.
//
// Seen in real outputs: keys quoted when they hold spaces or dashes
// ("IDE Controller-0-0"="none"), keys with spaces left unquoted
// (BIOS NVRAM File="..."), unquoted numbers (memory=1024), quoted values
// spanning lines (description="a\nb"), and lines that are not key=value.
func ParseMachineReadable(out string) (MachineInfo, error) {
	mi := MachineInfo{Values: map[string]string{}}
	lines := strings.Split(strings.ReplaceAll(out, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" {
			continue
		}
		key, rest, ok := splitKey(line)
		if !ok {
			mi.Other = append(mi.Other, strings.TrimSpace(line))
			continue
		}
		if !strings.HasPrefix(rest, `"`) {
			mi.Values[key] = strings.TrimRight(rest, " \t")
			continue
		}
		// Quoted value: it ends at a line whose last character is an
		// unescaped quote, possibly several lines further down.
		body := rest[1:]
		start := i
		for !endsWithQuote(body) {
			i++
			if i >= len(lines) {
				return mi, fmt.Errorf("showvminfo: value of %q opened on line %d is never closed", key, start+1)
			}
			body += "\n" + lines[i]
		}
		mi.Values[key] = unescape(body[:len(body)-1])
	}
	return mi, nil
}

// splitKey splits `key=rest` or `"quoted key"=rest`.
func splitKey(line string) (key, rest string, ok bool) {
	if strings.HasPrefix(line, `"`) {
		end := strings.Index(line[1:], `"=`)
		if end <= 0 {
			return "", "", false
		}
		return line[1 : 1+end], line[end+3:], true
	}
	eq := strings.IndexByte(line, '=')
	if eq <= 0 || strings.ContainsAny(line[:eq], "\"") || line[0] == ' ' || line[0] == '\t' {
		return "", "", false
	}
	return line[:eq], line[eq+1:], true
}

// endsWithQuote reports whether s ends with a quote not escaped by an odd
// number of backslashes.
func endsWithQuote(s string) bool {
	if !strings.HasSuffix(s, `"`) {
		return false
	}
	n := 0
	for i := len(s) - 2; i >= 0 && s[i] == '\\'; i-- {
		n++
	}
	return n%2 == 0
}

// unescape undoes VBoxManage's \" and \\ escaping; other backslashes
// (Windows paths from older versions) stay.
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\\') {
			i++
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Get returns a value and whether it was present.
func (m MachineInfo) Get(key string) (string, bool) {
	v, ok := m.Values[key]
	return v, ok
}

// Name is the VM's name.
func (m MachineInfo) Name() string { return m.Values["name"] }

// VMState is "poweroff", "running", "saved", "aborted", ...
func (m MachineInfo) VMState() string { return m.Values["VMState"] }

// Running reports whether the VM is running (or paused: still has a process).
func (m MachineInfo) Running() bool {
	switch m.VMState() {
	case "running", "paused", "starting", "stopping", "saving", "restoring":
		return true
	}
	return false
}

// NestedHWVirt reports nested-hw-virt; known is false when the key is
// absent (VirtualBox before 6.0 does not print it).
func (m MachineInfo) NestedHWVirt() (on, known bool) {
	v, ok := m.Values["nested-hw-virt"]
	return v == "on", ok
}

// NIC is one adapter as seen in --machinereadable.
type NIC struct {
	Index int
	// Type: "none", "null", "nat", "natnetwork", "bridged", "intnet",
	// "hostonly" (host-only interface), "hostonlynetwork" (7.x host-only
	// network), "generic", "cloud".
	Type string
	// HostOnlyAdapter is hostonlyadapterN (Linux host: "vboxnet4").
	HostOnlyAdapter string
	// HostOnlyNetwork is hostonly-networkN (7.x host-only networks).
	HostOnlyNetwork string
	MAC             string
	CableConnected  bool
}

// HostOnly reports whether the adapter is attached to a host-only interface
// or network.
func (n NIC) HostOnly() bool { return n.Type == "hostonly" || n.Type == "hostonlynetwork" }

// HostOnlyName is the interface or network the adapter is attached to.
func (n NIC) HostOnlyName() string {
	if n.HostOnlyAdapter != "" {
		return n.HostOnlyAdapter
	}
	return n.HostOnlyNetwork
}

// NIC returns adapter i (1-based); ok is false when nicN is absent.
func (m MachineInfo) NIC(i int) (NIC, bool) {
	s := strconv.Itoa(i)
	typ, ok := m.Values["nic"+s]
	if !ok {
		return NIC{}, false
	}
	return NIC{
		Index:           i,
		Type:            typ,
		HostOnlyAdapter: m.Values["hostonlyadapter"+s],
		HostOnlyNetwork: m.Values["hostonly-network"+s],
		MAC:             m.Values["macaddress"+s],
		CableConnected:  m.Values["cableconnected"+s] == "on",
	}, true
}
