package trace

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/labctl/labctl/netsetup"
	"github.com/labctl/labctl/service/check"
	"github.com/labctl/labctl/vmctl"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// DialFunc dials from one side of the path (a namespace, or this machine).
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Env is how the path is observed: netlink handles opened in each
// namespace (vmctl.HandleAt), a transport that runs iptables-save inside
// dom0, and dialers on each side. The sim has all of it; on a remote
// target the dom0 half (ObserveDom0) runs in the agent.
type Env struct {
	Config
	HostNL    *netlink.Handle // nil: the host side is not observed
	Dom0NL    *netlink.Handle
	Dom0      vmctl.Transport // runs `iptables-save -c` in dom0
	LeasePath string          // dnsmasq's lease file
	// GuestState asks the runtime; nil when it cannot be asked.
	GuestState func(ctx context.Context) (string, error)
	// Probe dials from the --from side; GuestDial from the guest's own
	// side (nil: not possible, e.g. a Xen domU) towards OutTarget.
	Probe     DialFunc
	GuestDial DialFunc
	OutTarget string        // beyond dom0 (sim: the WAN namespace's address, a closed port)
	Timeout   time.Duration // per probe; 3 s when zero
}

func (e Env) timeout() time.Duration {
	if e.Timeout > 0 {
		return e.Timeout
	}
	return 3 * time.Second
}

// Observe sends the probes and reads every hop's state. It changes
// nothing in the lab: the probes are one TCP connection to the guest's
// port (the contract's no-credentials request) and one connection attempt
// from the guest's side to a closed port beyond dom0.
func Observe(ctx context.Context, e Env) Obs {
	var o Obs
	before, cerr := e.counters(ctx)
	f := &o.Dom0.Forward
	switch {
	case e.GuestDial == nil:
		f.ProbeErr = "the guest's side cannot send a probe on this runtime; counters are read only"
	case !e.NAT:
		f.ProbeErr = "network.nat is off: the guest's traffic is not routed out"
	default:
		f.Probed, f.ProbeTo = true, e.OutTarget
		f.ProbeOK, f.ProbeErr = e.probeOut(ctx)
	}
	o.TCPErr, o.HTTPStatus, o.HTTPBody, o.HTTPErr = e.probeService(ctx)
	after, aerr := e.counters(ctx)
	if err := errors.Join(cerr, aerr); err != nil {
		f.CountersErr = err.Error()
	} else {
		f.Accepted, f.Masqueraded, f.Dropped = forwardDeltas(before, after)
	}
	if e.HostNL != nil && e.From != "dom0" {
		h := e.observeHost()
		o.Host = &h
	}
	e.observeDom0(ctx, &o.Dom0)
	return o
}

func (e Env) counters(ctx context.Context) (Counters, error) {
	var out, errb bytes.Buffer
	if err := e.Dom0.Run(ctx, []string{"iptables-save", "-c"}, nil, &out, &errb); err != nil {
		return nil, fmt.Errorf("iptables-save -c in dom0: %w: %s", err, strings.TrimSpace(errb.String()))
	}
	return ParseCounters(out.Bytes())
}

// probeOut connects from the guest's side to a closed port beyond dom0:
// a refusal (the far end's RST) proves the routed path both ways.
func (e Env) probeOut(ctx context.Context) (bool, string) {
	ctx, cancel := context.WithTimeout(ctx, e.timeout())
	defer cancel()
	c, err := e.GuestDial(ctx, "tcp4", e.OutTarget)
	if err == nil {
		c.Close()
		return true, ""
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		return true, ""
	}
	return false, err.Error()
}

// probeService connects to the guest's port, then asks the contract's
// cheapest question (no credentials: 401 "No user given"), keeping the
// connect and the answer apart so each is its own hop.
func (e Env) probeService(ctx context.Context) (tcpErr string, status int, body, httpErr string) {
	ctx, cancel := context.WithTimeout(ctx, 2*e.timeout())
	defer cancel()
	target := netip.AddrPortFrom(e.IP, uint16(e.Port)).String()
	dctx, dcancel := context.WithTimeout(ctx, e.timeout())
	c, err := e.Probe(dctx, "tcp4", target)
	dcancel()
	if err != nil {
		return err.Error(), 0, "", ""
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(e.timeout()))
	if _, err := fmt.Fprintf(c, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", check.HealthPath, target); err != nil {
		return "", 0, "", err.Error()
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", 0, "", err.Error()
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(http.MaxBytesReader(nil, resp.Body, 4096)); err != nil {
		return "", resp.StatusCode, b.String(), err.Error()
	}
	return "", resp.StatusCode, b.String(), ""
}

func (e Env) observeHost() HostObs {
	var h HostObs
	routes, err := e.HostNL.RouteGet(e.IP.AsSlice())
	links, lerr := netsetup.Links(e.HostNL)
	switch {
	case err != nil:
		h.RouteErr = err.Error()
	case len(routes) == 0:
		h.RouteErr = "no route"
	default:
		for _, l := range links {
			if l.Index == routes[0].LinkIndex {
				h.RouteDev, h.RouteAddrs = l.Name, l.Addrs
			}
		}
		if h.RouteDev == "" {
			h.RouteDev = fmt.Sprintf("ifindex %d", routes[0].LinkIndex)
		}
	}
	if lerr != nil {
		h.LinkErr = lerr.Error()
	} else if l, ok := netsetup.FindLink(links, e.HostIf); ok {
		h.LinkFound, h.LinkUp = true, l.Up
		if nl, err := e.HostNL.LinkByName(e.HostIf); err == nil {
			h.LinkCarrier = nl.Attrs().OperState == netlink.OperUp
		}
		h.NeighMAC, h.NeighState, h.NeighErr = neighbour(e.HostNL, l.Index, e.IP)
	}
	return h
}

func (e Env) observeDom0(ctx context.Context, d *Dom0Obs) {
	ls, err := e.Dom0NL.LinkList()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		d.LinksErr = fmt.Sprintf("dom0 links: %v", err)
	}
	names := map[int]string{}
	for _, l := range ls {
		names[l.Attrs().Index] = l.Attrs().Name
	}
	brIndex := 0
	for _, l := range ls {
		a := l.Attrs()
		d.Links = append(d.Links, LinkObs{Name: a.Name, Up: a.Flags&net.FlagUp != 0,
			Carrier: a.OperState == netlink.OperUp, Promisc: a.RawFlags&unix.IFF_PROMISC != 0, Master: names[a.MasterIndex]})
		if a.Name == e.Bridge {
			brIndex = a.Index
		}
	}
	mac := e.MAC
	if brIndex != 0 {
		// The bridge's forwarding database: learned entries name the port
		// the guest's MAC was last seen on (`bridge fdb show br br0`).
		fdb, err := e.Dom0NL.NeighList(0, unix.AF_BRIDGE)
		if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
			d.FDBErr = fmt.Sprintf("%s FDB: %v", e.Bridge, err)
		}
		for _, n := range fdb {
			if n.MasterIndex == brIndex && bytes.Equal(n.HardwareAddr, mac) {
				d.FDBPort = names[n.LinkIndex]
			}
		}
		d.NeighMAC, d.NeighSt, d.NeighErr = neighbour(e.Dom0NL, brIndex, e.IP)
	}
	if b, err := os.ReadFile(e.LeasePath); err != nil {
		d.LeaseErr = fmt.Sprintf("lease file: %v", err)
	} else if ls, err := netsetup.ParseLeases(b); err != nil {
		d.LeaseErr = fmt.Sprintf("lease file %s: %v", e.LeasePath, err)
	} else if l, ok := netsetup.LeaseFor(ls, mac, time.Now()); ok {
		d.LeaseIP = l.IP.String()
	}
	if e.GuestState != nil {
		st, err := e.GuestState(ctx)
		d.GuestState = st
		if err != nil {
			d.GuestErr = err.Error()
		}
	}
}

// neighbour is the ARP entry for ip on link index.
func neighbour(h *netlink.Handle, index int, ip netip.Addr) (mac, state, errText string) {
	ns, err := h.NeighList(index, netlink.FAMILY_V4)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return "", "", fmt.Sprintf("neighbours: %v", err)
	}
	for _, n := range ns {
		if a, ok := netip.AddrFromSlice(n.IP); ok && a.Unmap() == ip {
			if len(n.HardwareAddr) > 0 {
				mac = n.HardwareAddr.String()
			}
			return mac, nudString(n.State), ""
		}
	}
	return "", "", ""
}

func nudString(s int) string {
	for _, n := range []struct {
		bit  int
		name string
	}{
		{netlink.NUD_PERMANENT, "PERMANENT"}, {netlink.NUD_NOARP, "NOARP"}, {netlink.NUD_REACHABLE, "REACHABLE"},
		{netlink.NUD_STALE, "STALE"}, {netlink.NUD_DELAY, "DELAY"}, {netlink.NUD_PROBE, "PROBE"},
		{netlink.NUD_FAILED, "FAILED"}, {netlink.NUD_INCOMPLETE, "INCOMPLETE"},
	} {
		if s&n.bit != 0 {
			return n.name
		}
	}
	return "NONE"
}
