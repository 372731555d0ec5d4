// Package trace walks the path of one probe from the host (or dom0) to a
// guest's service, hop by hop, and names the first hop that fails, with
// the doctor's fix for it. Observing (observe.go) is kept apart from
// judging (this file): Evaluate is a pure function of what was seen, so
// each hop's verdict is tested without a lab, and the observations are
// plain JSON so that a remote dom0 can send them through the agent.
package trace

import (
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/netsetup"
	"github.com/labctl/labctl/service/check"
)

// Hop ids, in path order (docs/trace.md has the fault table).
const (
	HopHostRoute  = "host-route"  // the host's route to the guest
	HopHostARP    = "host-arp"    // the host's ARP entry for the guest
	HopHostLink   = "host-link"   // VirtualBox's host-only network (sim: the veth vboxnet4 ═ eth1)
	HopPromisc    = "promisc"     // eth1's PROMISC flag and its place in br0
	HopBridgePort = "bridge-port" // br0 up, the guest's port up, the FDB entry for its MAC
	HopLease      = "lease"       // dnsmasq's lease for the guest's MAC
	HopDom0ARP    = "dom0-arp"    // dom0's ARP entry for the guest on br0
	HopForward    = "forward"     // FORWARD and NAT counters moving for the guest's traffic
	HopTCP        = "tcp"         // TCP connect to the guest's port
	HopHTTP       = "http"        // the service's answer
)

// HopOrder is the path, outermost first.
var HopOrder = []string{HopHostRoute, HopHostARP, HopHostLink, HopPromisc, HopBridgePort,
	HopLease, HopDom0ARP, HopForward, HopTCP, HopHTTP}

// Status of one hop. Skip: not on this path (--from dom0 has no host hops)
// or not observable on this target.
const (
	StatusOK   = "ok"
	StatusWarn = "warn"
	StatusFail = "fail"
	StatusSkip = "skip"
)

// Hop is one step of the path and its verdict.
type Hop struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Detail string `json:"detail"`
	// Symptom marks a hop whose own state looks right but where the probe
	// did not get through (an unanswered ARP): the cause lies further on,
	// so it is named only when no later hop explains it.
	Symptom bool   `json:"symptom,omitempty"`
	Meaning string `json:"meaning,omitempty"`
	Fix     string `json:"fix,omitempty"`
	// Doctor names the doctor finding the fix comes from ("dom0/forward-policy").
	Doctor string `json:"doctor,omitempty"`
}

// Result is a whole trace.
type Result struct {
	Guest string `json:"guest"`
	From  string `json:"from"` // host | dom0
	Hops  []Hop  `json:"hops"`
	// Verdict is the id of the first hop that fails ("" when the path is clean).
	Verdict string `json:"verdict"`
	OK      bool   `json:"ok"`
}

// Config is what the path should look like (from the spec and the guest's record).
type Config struct {
	Guest       string
	MAC         net.HardwareAddr
	IP          netip.Addr
	Port        int
	Subnet      netip.Prefix
	From        string // "host" or "dom0"
	HostIf      string // the host's end of the host-only network (vboxnet4); "" when not observed
	Uplink      string // eth1
	Bridge      string // br0
	Vif         string // the guest's port on br0 when known (sim: vif<N>.0); "" for any
	Promiscuous bool   // the spec asks for eth1's PROMISC flag
	NAT         bool
	// HostCmd prefixes a command run on the host side
	// ("sudo ip netns exec <lab>-host " in the sim, "sudo " otherwise).
	HostCmd string
	// Reboot is the command that restarts the guest so that it asks for a
	// lease again ("labctl destroy auth-1 … && labctl deploy …").
	Reboot string
}

// Obs is everything observed along the path. Errors are strings so that
// the dom0 half can travel as JSON from the agent.
type Obs struct {
	Host *HostObs `json:"host,omitempty"` // nil: --from dom0, or not observable
	Dom0 Dom0Obs  `json:"dom0"`
	// The probe itself, from the --from side.
	TCPErr     string `json:"tcp_err,omitempty"`
	HTTPStatus int    `json:"http_status,omitempty"`
	HTTPBody   string `json:"http_body,omitempty"`
	HTTPErr    string `json:"http_err,omitempty"`
}

// HostObs is the host side.
type HostObs struct {
	RouteDev   string         `json:"route_dev"`
	RouteAddrs []netip.Prefix `json:"route_addrs"` // the route device's addresses
	RouteErr   string         `json:"route_err,omitempty"`
	NeighMAC   string         `json:"neigh_mac,omitempty"`
	NeighState string         `json:"neigh_state,omitempty"`
	NeighErr   string         `json:"neigh_err,omitempty"`
	// The host-only interface (sim: vboxnet4): admin up, carrier (its
	// peer eth1 is up).
	LinkFound   bool   `json:"link_found"`
	LinkUp      bool   `json:"link_up"`
	LinkCarrier bool   `json:"link_carrier"`
	LinkErr     string `json:"link_err,omitempty"`
}

// Dom0Obs is dom0's side (the agent's half on a remote target).
type Dom0Obs struct {
	LinksErr string     `json:"links_err,omitempty"`
	Links    []LinkObs  `json:"links"`
	FDBPort  string     `json:"fdb_port,omitempty"` // port of br0 whose FDB holds the guest's MAC
	FDBErr   string     `json:"fdb_err,omitempty"`
	LeaseIP  string     `json:"lease_ip,omitempty"`
	LeaseErr string     `json:"lease_err,omitempty"`
	NeighMAC string     `json:"neigh_mac,omitempty"`
	NeighSt  string     `json:"neigh_state,omitempty"`
	NeighErr string     `json:"neigh_err,omitempty"`
	Forward  ForwardObs `json:"forward"`
	// Guest is the runtime's word for the guest ("running", "stopped").
	GuestState string `json:"guest_state,omitempty"`
	GuestErr   string `json:"guest_err,omitempty"`
}

// LinkObs is one interface of dom0.
type LinkObs struct {
	Name    string `json:"name"`
	Up      bool   `json:"up"`      // IFF_UP
	Carrier bool   `json:"carrier"` // operstate up
	Promisc bool   `json:"promisc"` // the flag itself
	Master  string `json:"master,omitempty"`
}

// ForwardObs is the routed leg: a probe from the guest's side to beyond
// dom0 (sim: the WAN namespace), and iptables' counters around it.
type ForwardObs struct {
	Probed   bool   `json:"probed"` // false: the guest's side cannot send (xen) or NAT is off
	ProbeTo  string `json:"probe_to,omitempty"`
	ProbeOK  bool   `json:"probe_ok"`
	ProbeErr string `json:"probe_err,omitempty"`
	// Deltas of labctl's rules and of every rule that dropped packets.
	Accepted    uint64   `json:"accepted"`          // LABCTL-FWD packets
	Masqueraded uint64   `json:"masqueraded"`       // LABCTL-NAT MASQUERADE packets
	Dropped     []string `json:"dropped,omitempty"` // "filter/FORWARD rule 1 -j DROP: 3 packets"
	CountersErr string   `json:"counters_err,omitempty"`
}

func (o Dom0Obs) link(name string) (LinkObs, bool) {
	for _, l := range o.Links {
		if l.Name == name {
			return l, true
		}
	}
	return LinkObs{}, false
}

// Evaluate judges every hop. It never fails: what cannot be observed is a
// failed or skipped hop.
func Evaluate(c Config, o Obs) []Hop {
	hops := make([]Hop, 0, len(HopOrder))
	add := func(h Hop) { hops = append(hops, h) }
	fromHost := c.From != "dom0"
	if fromHost && o.Host != nil {
		add(hostRoute(c, *o.Host))
		add(hostARP(c, *o.Host))
		add(hostLink(c, *o.Host, o.Dom0))
	} else {
		why := "the probe starts in dom0 (--from dom0)"
		if fromHost {
			why = "the host side is not observable on this target"
		}
		for _, id := range []string{HopHostRoute, HopHostARP, HopHostLink} {
			add(Hop{ID: id, Status: StatusSkip, Detail: why})
		}
	}
	add(promisc(c, o.Dom0))
	add(bridgePort(c, o.Dom0))
	add(lease(c, o.Dom0))
	add(dom0ARP(c, o.Dom0))
	add(forward(c, o.Dom0.Forward))
	add(tcp(c, o))
	add(httpHop(c, o))
	return hops
}

func hostRoute(c Config, h HostObs) Hop {
	x := Hop{ID: HopHostRoute}
	switch {
	case h.RouteErr != "":
		x.Status, x.Detail = StatusFail, fmt.Sprintf("no route to %s: %s", c.IP, h.RouteErr)
		x.Meaning = "the host cannot send anything to the lab subnet " + c.Subnet.String()
		if h.LinkUp && c.HostIf != "" {
			// The interface is up, so the route itself is what is missing
			// (doctor's route fix assumes a down link).
			x.Fix = c.HostCmd + "ip route replace " + c.Subnet.Masked().String() + " dev " + c.HostIf
		}
	case !inSubnet(h.RouteAddrs, c.Subnet):
		x.Status, x.Detail = StatusFail, fmt.Sprintf("%s leaves via %s, which has no address in %s", c.IP, h.RouteDev, c.Subnet)
		x.Meaning = "the host's traffic for the guest leaves through an interface that is not on the host-only network"
	default:
		x.Status, x.Detail = StatusOK, fmt.Sprintf("%s via %s", c.IP, h.RouteDev)
	}
	return x
}

func hostARP(c Config, h HostObs) Hop {
	x := Hop{ID: HopHostARP}
	st := strings.ToUpper(h.NeighState)
	switch {
	case h.NeighErr != "":
		x.Status, x.Detail, x.Symptom = StatusWarn, h.NeighErr, true
	case h.NeighMAC == "" || st == "FAILED" || st == "INCOMPLETE":
		x.Status, x.Symptom = StatusWarn, true
		x.Detail = fmt.Sprintf("no ARP answer for %s (%s): the break is further along", c.IP, orNone(st))
	case !strings.EqualFold(h.NeighMAC, c.MAC.String()):
		x.Status = StatusFail
		x.Detail = fmt.Sprintf("%s is at %s (%s), not at the guest's %s", c.IP, h.NeighMAC, st, c.MAC)
		x.Meaning = "another machine answers ARP for the guest's address: an address conflict, or a stale static entry on the host"
		x.Fix = "ip neigh del " + c.IP.String() + " dev " + h.RouteDev + "  # then find the machine with MAC " + h.NeighMAC
	default:
		x.Status, x.Detail = StatusOK, fmt.Sprintf("%s is at %s (%s)", c.IP, h.NeighMAC, st)
	}
	return x
}

func hostLink(c Config, h HostObs, d Dom0Obs) Hop {
	x := Hop{ID: HopHostLink}
	up, found := d.link(c.Uplink)
	switch {
	case h.LinkErr != "":
		x.Status, x.Detail = StatusFail, h.LinkErr
	case !h.LinkFound:
		x.Status, x.Detail = StatusFail, c.HostIf+" does not exist on the host"
		x.Meaning = "the host has no end on the host-only network"
	case !h.LinkUp:
		x.Status, x.Detail = StatusFail, c.HostIf+" is down"
		x.Meaning = "the host's end of the host-only network is down: nothing leaves the host for the lab"
	case d.LinksErr == "" && !found:
		x.Status, x.Detail = StatusFail, fmt.Sprintf("dom0 has no %s", c.Uplink)
		x.Meaning = "dom0's end of the host-only network is missing"
	case d.LinksErr == "" && !up.Up:
		x.Status, x.Detail = StatusFail, fmt.Sprintf("%s is up but dom0's %s is down", c.HostIf, c.Uplink)
		x.Meaning = "dom0's end of the host-only network is down: frames from the host go nowhere"
	case !h.LinkCarrier:
		x.Status, x.Detail = StatusFail, c.HostIf+" has no carrier"
		x.Meaning = "the other end of the host-only network is down or gone"
	default:
		x.Status, x.Detail = StatusOK, fmt.Sprintf("%s ═ %s both up", c.HostIf, c.Uplink)
	}
	return x
}

func promisc(c Config, d Dom0Obs) Hop {
	x := Hop{ID: HopPromisc}
	up, found := d.link(c.Uplink)
	switch {
	case d.LinksErr != "":
		x.Status, x.Detail = StatusFail, d.LinksErr
		x.Meaning = "dom0's interfaces cannot be listed"
	case !found:
		x.Status, x.Detail = StatusFail, c.Uplink+" does not exist in dom0"
	case up.Master != c.Bridge:
		x.Status, x.Detail = StatusFail, fmt.Sprintf("%s is not a port of %s (master: %s)", c.Uplink, c.Bridge, orNone(up.Master))
		x.Meaning = "frames from the host arrive on the uplink but never reach the bridge"
	case c.Promiscuous && !up.Promisc:
		x.Status, x.Detail = StatusWarn, fmt.Sprintf("%s is a port of %s but its PROMISC flag is off", c.Uplink, c.Bridge)
		x.Meaning = "the spec asks for the flag (the article sets it, and VirtualBox passes other MACs' frames only to a promiscuous NIC)"
	default:
		x.Status, x.Detail = StatusOK, fmt.Sprintf("%s in %s, PROMISC %s", c.Uplink, c.Bridge, onOff(up.Promisc))
	}
	return x
}

func bridgePort(c Config, d Dom0Obs) Hop {
	x := Hop{ID: HopBridgePort}
	br, found := d.link(c.Bridge)
	switch {
	case d.LinksErr != "":
		x.Status, x.Detail = StatusFail, d.LinksErr
		return x
	case !found:
		x.Status, x.Detail = StatusFail, c.Bridge+" does not exist"
		return x
	case !br.Up:
		x.Status, x.Detail = StatusFail, c.Bridge+" is down"
		x.Meaning = "a down bridge forwards nothing"
		return x
	}
	port := c.Vif
	if d.FDBPort != "" && d.FDBPort != c.Uplink {
		port = d.FDBPort
	}
	if port != "" {
		p, ok := d.link(port)
		switch {
		case !ok:
			x.Status, x.Detail = StatusFail, fmt.Sprintf("the guest's port %s does not exist", port)
			x.Meaning = "the guest's link to the bridge is gone"
			return x
		case p.Master != c.Bridge:
			x.Status, x.Detail = StatusFail, fmt.Sprintf("the guest's port %s is not in %s (master: %s)", port, c.Bridge, orNone(p.Master))
			x.Meaning = "the guest's vif is not on the bridge: nothing reaches it"
			return x
		case !p.Up:
			x.Status, x.Detail = StatusFail, fmt.Sprintf("the guest's port %s is down", port)
			x.Meaning = "the bridge forwards nothing to or from a down port"
			return x
		case !p.Carrier:
			x.Status, x.Detail = StatusFail, fmt.Sprintf("the guest's port %s has no carrier", port)
			x.Meaning = "the guest's end of the link is down"
			return x
		}
	}
	switch {
	case d.FDBErr != "":
		x.Status, x.Detail, x.Symptom = StatusWarn, d.FDBErr, true
	case d.FDBPort == "":
		x.Status, x.Symptom = StatusWarn, true
		x.Detail = fmt.Sprintf("%s up, port %s up, but no FDB entry for %s: the bridge has not heard from the guest", c.Bridge, orNone(port), c.MAC)
	case d.FDBPort == c.Uplink:
		x.Status = StatusFail
		x.Detail = fmt.Sprintf("%s learned the guest's MAC %s on the uplink %s, not on its vif", c.Bridge, c.MAC, c.Uplink)
		x.Meaning = "the guest's MAC is seen on the host side: a duplicate MAC, or a loop"
	default:
		x.Status, x.Detail = StatusOK, fmt.Sprintf("%s up; FDB has %s on port %s (up)", c.Bridge, c.MAC, d.FDBPort)
	}
	return x
}

func lease(c Config, d Dom0Obs) Hop {
	x := Hop{ID: HopLease}
	switch {
	case d.LeaseErr != "":
		x.Status, x.Detail = StatusFail, d.LeaseErr
		x.Meaning = "dnsmasq's lease file cannot be read"
	case d.LeaseIP == "":
		x.Status, x.Detail = StatusFail, fmt.Sprintf("no unexpired lease for %s (pinned to %s)", c.MAC, c.IP)
		x.Meaning = "dnsmasq holds no lease for the guest: it lost or released it, or the guest never asked"
		if d.GuestState == "running" {
			// A running guest asks again only at renewal: deploy, which
			// waits for a lease, would wait in vain; a fresh boot asks.
			x.Meaning += "; the running guest will not ask again before its renewal time"
			x.Fix = c.Reboot
		}
	case d.LeaseIP != c.IP.String():
		x.Status, x.Detail = StatusFail, fmt.Sprintf("%s leased %s, but its pin is %s", c.MAC, d.LeaseIP, c.IP)
		x.Meaning = "the guest is not where labctl looks for it"
	default:
		x.Status, x.Detail = StatusOK, fmt.Sprintf("%s leased %s", c.MAC, d.LeaseIP)
	}
	return x
}

func dom0ARP(c Config, d Dom0Obs) Hop {
	x := Hop{ID: HopDom0ARP}
	st := strings.ToUpper(d.NeighSt)
	switch {
	case d.NeighErr != "":
		x.Status, x.Detail, x.Symptom = StatusWarn, d.NeighErr, true
	case d.NeighMAC == "" || st == "FAILED" || st == "INCOMPLETE":
		x.Status, x.Symptom = StatusWarn, true
		x.Detail = fmt.Sprintf("dom0 has no ARP answer for %s on %s (%s)", c.IP, c.Bridge, orNone(st))
	case !strings.EqualFold(d.NeighMAC, c.MAC.String()):
		x.Status = StatusFail
		x.Detail = fmt.Sprintf("%s is at %s on %s, not at the guest's %s", c.IP, d.NeighMAC, c.Bridge, c.MAC)
		x.Meaning = "another machine answers ARP for the guest's address"
	default:
		x.Status, x.Detail = StatusOK, fmt.Sprintf("%s is at %s (%s)", c.IP, d.NeighMAC, st)
	}
	return x
}

func forward(c Config, f ForwardObs) Hop {
	x := Hop{ID: HopForward}
	moved := fmt.Sprintf("%s accepted %d, %s masqueraded %d", netsetup.ChainForward, f.Accepted, netsetup.ChainNAT, f.Masqueraded)
	if len(f.Dropped) > 0 {
		moved += "; dropped: " + strings.Join(f.Dropped, "; ")
	}
	switch {
	case !f.Probed:
		x.Status = StatusSkip
		x.Detail = "not probed: " + orNone(f.ProbeErr)
		if f.CountersErr == "" {
			x.Detail += " (" + moved + ")"
		}
	case f.CountersErr != "" && !f.ProbeOK:
		x.Status, x.Detail = StatusFail, fmt.Sprintf("the guest's probe to %s got no answer (%s); counters unreadable: %s", f.ProbeTo, f.ProbeErr, f.CountersErr)
		x.Meaning = "dom0 does not route the guest's traffic out"
	case !f.ProbeOK:
		x.Status = StatusFail
		x.Detail = fmt.Sprintf("the guest's probe to %s got no answer (%s); %s", f.ProbeTo, f.ProbeErr, moved)
		x.Meaning = "dom0 does not forward (or masquerade) the guest's traffic: a DROP in FORWARD, a missing accept, or forwarding off"
	case c.NAT && f.CountersErr == "" && f.Masqueraded == 0:
		x.Status = StatusWarn
		x.Detail = fmt.Sprintf("the guest's probe to %s was answered, but labctl's MASQUERADE did not count it (%s)", f.ProbeTo, moved)
		x.Meaning = "something else translates or routes the guest's traffic; labctl's NAT rules are not in the path"
	default:
		x.Status, x.Detail = StatusOK, fmt.Sprintf("the guest's probe to %s was answered; %s", f.ProbeTo, moved)
	}
	return x
}

func tcp(c Config, o Obs) Hop {
	x := Hop{ID: HopTCP}
	target := netip.AddrPortFrom(c.IP, uint16(c.Port)).String()
	guest := ""
	if o.Dom0.GuestState != "" {
		guest = "; the guest is " + o.Dom0.GuestState
	} else if o.Dom0.GuestErr != "" {
		guest = "; guest state: " + o.Dom0.GuestErr
	}
	switch {
	case o.TCPErr != "":
		x.Status, x.Detail = StatusFail, fmt.Sprintf("connect to %s from %s: %s%s", target, c.From, o.TCPErr, guest)
		x.Meaning = "nothing accepts connections on the guest's port: the guest is stopped, crashed, or its service did not start"
	default:
		x.Status, x.Detail = StatusOK, fmt.Sprintf("connected to %s from %s", target, c.From)
	}
	return x
}

func httpHop(c Config, o Obs) Hop {
	x := Hop{ID: HopHTTP}
	switch {
	case o.TCPErr != "":
		x.Status, x.Detail = StatusSkip, "no connection"
	case o.HTTPErr != "":
		x.Status, x.Detail = StatusFail, "no HTTP answer: "+o.HTTPErr
		x.Meaning = "the guest accepts connections but its service does not answer"
	case check.HealthAnswer(o.HTTPStatus, o.HTTPBody) != nil:
		x.Status, x.Detail = StatusFail, check.HealthAnswer(o.HTTPStatus, o.HTTPBody).Error()
		x.Meaning = "something other than the auth service answers on the guest's port"
	default:
		x.Status, x.Detail = StatusOK, check.HealthOK
	}
	return x
}

// Verdict is the hop to blame: the first that fails on its own account;
// else the first warning on its own account; else the first symptom.
func Verdict(hops []Hop) string {
	for _, pass := range []func(Hop) bool{
		func(h Hop) bool { return h.Status == StatusFail && !h.Symptom },
		func(h Hop) bool { return h.Status == StatusWarn && !h.Symptom },
		func(h Hop) bool { return h.Symptom },
	} {
		for _, h := range hops {
			if pass(h) {
				return h.ID
			}
		}
	}
	return ""
}

// hopChecks maps a hop to the doctor findings whose fix repairs it, in
// preference order (layer/check).
var hopChecks = map[string][]string{
	HopHostRoute:  {lc(doctor.LayerHost, doctor.CheckRoute), lc(doctor.LayerHost, doctor.CheckHostOnlyAddress)},
	HopHostARP:    {lc(doctor.LayerGuest, doctor.CheckNeighbor)},
	HopHostLink:   {lc(doctor.LayerHost, doctor.CheckHostOnlyAddress), lc(doctor.LayerHost, doctor.CheckRoute), lc(doctor.LayerHost, doctor.CheckPromiscPolicy), lc(doctor.LayerHost, doctor.CheckHostOnlyAdapter), lc(doctor.LayerDom0, doctor.CheckUplink)},
	HopPromisc:    {lc(doctor.LayerDom0, doctor.CheckUplink), lc(doctor.LayerHost, doctor.CheckPromiscPolicy)},
	HopBridgePort: {lc(doctor.LayerDom0, doctor.CheckBridge), lc(doctor.LayerGuest, doctor.CheckProbeDom0), lc(doctor.LayerGuest, doctor.CheckNeighbor)},
	HopLease:      {lc(doctor.LayerGuest, doctor.CheckLease), lc(doctor.LayerDom0, doctor.CheckDnsmasq), lc(doctor.LayerDom0, doctor.CheckServerConflict)},
	HopDom0ARP:    {lc(doctor.LayerGuest, doctor.CheckNeighbor), lc(doctor.LayerGuest, doctor.CheckGuestState)},
	HopForward:    {lc(doctor.LayerDom0, doctor.CheckForwardPolicy), lc(doctor.LayerDom0, doctor.CheckIPForward), lc(doctor.LayerDom0, doctor.CheckDockerFirewalld)},
	HopTCP:        {lc(doctor.LayerGuest, doctor.CheckGuestState), lc(doctor.LayerGuest, doctor.CheckProbeDom0)},
	HopHTTP:       {lc(doctor.LayerGuest, doctor.CheckProbeDom0), lc(doctor.LayerGuest, doctor.CheckGuestState)},
}

func lc(l doctor.Layer, check string) string { return string(l) + "/" + check }

// Judge evaluates the hops, attaches doctor's fix to each failing or
// warning hop, and names the verdict. findings are doctor's (any order);
// fallback is the fix for a hop no finding covers (e.g. "labctl deploy").
func Judge(c Config, o Obs, findings []doctor.Finding, fallback map[string]string) Result {
	hops := Evaluate(c, o)
	for i := range hops {
		h := &hops[i]
		if h.Status != StatusFail && h.Status != StatusWarn {
			continue
		}
		if h.Fix == "" {
			if f, ok := pickFinding(findings, h.ID, c.Guest); ok {
				h.Fix = f.Fix
				h.Doctor = string(f.Layer) + "/" + f.Check
				if h.Meaning == "" {
					h.Meaning = f.Meaning
				}
			} else {
				h.Fix = fallback[h.ID]
			}
		}
	}
	r := Result{Guest: c.Guest, From: c.From, Hops: hops, Verdict: Verdict(hops)}
	r.OK = true
	for _, h := range hops {
		if h.Status == StatusFail {
			r.OK = false
		}
	}
	return r
}

func pickFinding(fs []doctor.Finding, hop, guest string) (doctor.Finding, bool) {
	for _, want := range hopChecks[hop] {
		for _, f := range fs {
			if string(f.Layer)+"/"+f.Check != want || f.Status == doctor.StatusOK || f.Fix == "" {
				continue
			}
			if f.Layer == doctor.LayerGuest && f.Subject != guest {
				continue
			}
			return f, true
		}
	}
	return doctor.Finding{}, false
}

func inSubnet(ps []netip.Prefix, subnet netip.Prefix) bool {
	for _, p := range ps {
		if subnet.Contains(p.Addr()) {
			return true
		}
	}
	return false
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
