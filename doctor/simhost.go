package doctor

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/labctl/labctl/netsetup"
	"github.com/labctl/labctl/vmctl"
)

// SimHostConfig names the sim's stand-in for VirtualBox's host-only
// network (vmctl.SimNames, vmctl.SimHostIf and the spec's addresses).
type SimHostConfig struct {
	HostNS, Dom0NS string // the simulated host's and dom0's namespaces
	HostIf, Uplink string // the host's end (vboxnet4) and dom0's (eth1)
	HostAddr       netip.Prefix
	Dom0Addr       netip.Addr
	Subnet         netip.Prefix
}

// CheckSimHost checks the sim's stand-in for VirtualBox's host-only
// network: the host's end in its namespace, its address, and the route
// to dom0.
func CheckSimHost(c SimHostConfig) []Finding {
	host := c.HostNS
	out := []Finding{{Layer: LayerHost, Check: "simulated", Status: StatusOK,
		Detail: fmt.Sprintf("--target sim: VirtualBox is simulated by the veth %s/%s ═ %s/%s; VBoxManage's checks do not apply",
			host, c.HostIf, c.Dom0NS, c.Uplink)}}
	in := "sudo ip netns exec " + host + " "
	h, err := vmctl.HandleAt(host)
	if err != nil {
		return append(out, Finding{Layer: LayerHost, Check: CheckHostOnlyAddress, Status: StatusFail,
			Detail: err.Error(), Meaning: "the simulated host does not exist: the lab is not up",
			Fix: "labctl sim up"})
	}
	defer h.Close()
	links, err := netsetup.Links(h)
	want := c.HostAddr
	f := Finding{Layer: LayerHost, Check: CheckHostOnlyAddress}
	l, found := netsetup.FindLink(links, c.HostIf)
	switch {
	case err != nil:
		f.Status, f.Detail = StatusFail, err.Error()
	case !found:
		f.Status, f.Detail = StatusFail, c.HostIf+" does not exist in "+host
		f.Meaning = "the host has no end on the lab network"
		f.Fix = "labctl down && labctl up"
	case !l.Up:
		f.Status, f.Detail = StatusFail, c.HostIf+" is down"
		f.Meaning = "the host's end of the host-only network is down: the host reaches neither dom0 nor the guests"
		f.Fix = in + "ip link set " + c.HostIf + " up"
	case !slices.Contains(l.Addrs, want):
		f.Status, f.Detail = StatusFail, fmt.Sprintf("%s lacks %s", c.HostIf, want)
		f.Meaning = "the host's end of the host-only network has no address in the lab subnet"
		f.Fix = in + "ip addr add " + want.String() + " dev " + c.HostIf
	default:
		f.Status, f.Detail = StatusOK, fmt.Sprintf("%s is up with %s", c.HostIf, want)
	}
	out = append(out, f)
	r := Finding{Layer: LayerHost, Check: CheckRoute}
	dst := c.Dom0Addr
	routes, err := h.RouteGet(dst.AsSlice())
	switch {
	case err != nil || len(routes) == 0:
		r.Status, r.Detail = StatusFail, fmt.Sprintf("no route from %s to %s (%v)", host, dst, err)
		r.Meaning = "the host cannot send anything to the lab"
		r.Fix = in + "ip link set " + c.HostIf + " up"
	default:
		dev := strconv.Itoa(routes[0].LinkIndex)
		for _, l := range links {
			if l.Index == routes[0].LinkIndex {
				dev = l.Name
			}
		}
		if dev == c.HostIf {
			r.Status, r.Detail = StatusOK, fmt.Sprintf("%s is reached via %s", dst, dev)
		} else {
			r.Status, r.Detail = StatusFail, fmt.Sprintf("%s is reached via %s, not %s", dst, dev, c.HostIf)
			r.Meaning = "the host's traffic for the lab leaves through another interface"
			r.Fix = in + "ip route replace " + c.Subnet.String() + " dev " + c.HostIf
		}
	}
	return append(out, r)
}
