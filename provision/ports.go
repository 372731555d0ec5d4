package provision

import (
	"errors"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// guestPorts maps each MAC the bridge has learned to the name of the
// bridge port it was learned on (vif1.0): the live answer to "which port
// is this guest plugged into", for xen (vif<domid>.0) and the sim alike.
// Status calls it after its guest steps probed every guest from dom0, so
// the entries are fresh. An error or an unlearned MAC leaves the port out.
func (d *Dom0) guestPorts() portMap {
	out := portMap{}
	if d.NL == nil {
		return out
	}
	br, err := d.NL.LinkByName(d.Spec.Network.Bridge)
	if err != nil {
		return out
	}
	fdb, err := d.NL.NeighList(0, unix.AF_BRIDGE)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return out
	}
	for _, n := range fdb {
		if n.MasterIndex != br.Attrs().Index || len(n.HardwareAddr) == 0 || n.Flags&netlink.NTF_SELF != 0 {
			continue
		}
		l, err := d.NL.LinkByIndex(n.LinkIndex)
		if err != nil {
			continue
		}
		out[strings.ToLower(n.HardwareAddr.String())] = l.Attrs().Name
	}
	return out
}

// portMap is MAC (lower case) → bridge port name.
type portMap map[string]string

func (m portMap) of(mac string) string { return m[strings.ToLower(mac)] }
