package vbox

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// NICLine is one "NIC N:" line of the human-readable `VBoxManage showvminfo`.
// It is the only place VirtualBox prints an adapter's promiscuous policy:
// --machinereadable has no nicpromiscN key.
type NICLine struct {
	Index    int
	Disabled bool
	MAC      string
	// Attachment as printed: "NAT", "Host-only Interface 'vboxnet4'",
	// "Bridged Interface 'en0: Wi-Fi'", "Host-only Network 'x'".
	Attachment string
	// AttachmentKind is the Attachment without the quoted name.
	AttachmentKind string
	// AttachmentName is the quoted name ("vboxnet4"), if any.
	AttachmentName string
	// PromiscPolicy: "deny", "allow-vms" or "allow-all".
	PromiscPolicy  string
	CableConnected bool
	Type           string
	// Fields holds every "Key: value" pair of the line.
	Fields map[string]string
}

var nicLineRE = regexp.MustCompile(`^NIC (\d+):\s+(.*)$`)

// ParseNICLines returns the NIC lines of human-readable showvminfo output,
// ignoring every other line ("NIC 1 Settings:", "NIC 1 Rule(0):", ...).
func ParseNICLines(out string) ([]NICLine, error) {
	var nics []NICLine
	for _, raw := range strings.Split(out, "\n") {
		line := strings.TrimSpace(raw)
		m := nicLineRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		idx, err := strconv.Atoi(m[1])
		if err != nil || idx > 1000 {
			return nil, fmt.Errorf("showvminfo NIC line %q: bad adapter number", line)
		}
		n := NICLine{Index: idx, Fields: map[string]string{}}
		body := strings.TrimSpace(m[2])
		if body == "disabled" {
			n.Disabled = true
			nics = append(nics, n)
			continue
		}
		parseNICFields(body, n.Fields)
		n.MAC = n.Fields["MAC"]
		n.Attachment = n.Fields["Attachment"]
		n.AttachmentKind, n.AttachmentName = splitAttachment(n.Attachment)
		n.PromiscPolicy = n.Fields["Promisc Policy"]
		n.CableConnected = n.Fields["Cable connected"] == "on"
		n.Type = n.Fields["Type"]
		nics = append(nics, n)
	}
	return nics, nil
}

// parseNICFields splits "K: v, K2: v2, ..." into fields. A piece without
// ": " continues the previous value: bridged interface names can contain
// commas, and "Trace: off (file: none)" contains ": " inside the value.
func parseNICFields(body string, fields map[string]string) {
	last := ""
	for _, piece := range strings.Split(body, ", ") {
		k, v, ok := strings.Cut(piece, ": ")
		if !ok || last != "" && strings.Count(fields[last], "'")%2 == 1 {
			if last != "" {
				fields[last] += ", " + piece
			}
			continue
		}
		k = strings.TrimSpace(k)
		fields[k] = strings.TrimSpace(v)
		last = k
	}
}

// splitAttachment splits "Host-only Interface 'vboxnet4'" into its kind and
// quoted name.
func splitAttachment(a string) (kind, name string) {
	i := strings.IndexByte(a, '\'')
	if i < 0 || !strings.HasSuffix(a, "'") || len(a)-1 <= i {
		return a, ""
	}
	return strings.TrimSpace(a[:i]), a[i+1 : len(a)-1]
}

// HostOnly reports whether the adapter is attached to a host-only interface
// or network.
func (n NICLine) HostOnly() bool { return strings.HasPrefix(n.AttachmentKind, "Host-only") }

// FindNICLine returns the line for adapter i.
func FindNICLine(nics []NICLine, i int) (NICLine, bool) {
	for _, n := range nics {
		if n.Index == i {
			return n, true
		}
	}
	return NICLine{}, false
}
