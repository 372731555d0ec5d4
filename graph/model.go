// Package graph draws the lab as it is: a model built from what labctl
// status and labctl doctor observed on the live lab (not the spec), and
// its renderings as DOT, mermaid, SVG (laid out by Graphviz) and one
// self-contained HTML page.
package graph

import (
	"fmt"
	"strings"

	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/provision"
)

// Input is what the live lab said about itself.
type Input struct {
	// Spec gives names only (bridge, uplink) and the DHCP range rendered
	// into dnsmasq's config; whether that config is current comes from
	// Status.
	Spec provision.Spec
	// Status is `labctl status`: every step's observed items and the
	// deployed guests (with their bridge ports).
	Status provision.GuestsResult
	// Findings is `labctl doctor`: the host side, dom0's services and the
	// probes from dom0 and from the host.
	Findings []doctor.Finding
	// HostIf names the host's end of the host-only network (vboxnet4).
	HostIf string
}

// Node kinds.
const (
	KindHost    = "host"
	KindPort    = "port"
	KindBridge  = "bridge"
	KindService = "service"
	KindWAN     = "wan"
	KindGuest   = "guest"
)

// Node is one box of the picture.
type Node struct {
	ID      string   `json:"id"` // "guest:auth-1"; guests' IDs start with "guest:"
	Kind    string   `json:"kind"`
	Cluster string   `json:"cluster,omitempty"` // "host", "dom0", "guests"
	Lines   []string `json:"lines"`             // first line is the title
	Problem bool     `json:"problem"`
}

// Edge links two nodes.
type Edge struct {
	From    string `json:"from"`
	To      string `json:"to"`
	Label   string `json:"label,omitempty"`
	Problem bool   `json:"problem"`
}

// Row is one line of the status table.
type Row struct {
	Layer    string `json:"layer"`
	Subject  string `json:"subject"`
	Check    string `json:"check"`
	Observed string `json:"observed"`
	OK       bool   `json:"ok"`
}

// Graph is the lab's picture.
type Graph struct {
	Lab    string `json:"lab"`
	Target string `json:"target,omitempty"`
	Nodes  []Node `json:"nodes"`
	Edges  []Edge `json:"edges"`
	Rows   []Row  `json:"rows"`
	// Problems lists every failed observation, for a caption.
	Problems []string `json:"problems,omitempty"`
}

// GuestNodeID is the node ID of a guest.
func GuestNodeID(name string) string { return "guest:" + name }

// Build turns the observations into the picture. Everything shown comes
// from an observation; a value the lab did not report reads "unknown"
// and is drawn as a problem.
func Build(in Input) Graph {
	b := builder{in: in, g: Graph{Lab: in.Status.Lab, Target: in.Status.Target}}
	if b.g.Lab == "" {
		b.g.Lab = in.Spec.Lab
	}
	b.rows()

	// Host side.
	host := b.addHost()

	// dom0: the uplink port, the bridge, the services.
	up := b.addUplink()
	br := b.addBridge()
	svc := b.addServices()

	wan := Node{ID: "wan", Kind: KindWAN, Lines: []string{"outside (NAT uplink)"}}
	b.add(wan)

	b.linkDom0(host, up, br, svc, wan)
	for _, gs := range in.Status.Guests {
		b.addGuest(gs, br)
	}
	return b.g
}

// addHost adds the host's node: its host-only interface and address.
func (b *builder) addHost() Node {
	n := b.in.Spec.Network
	hostIf := b.in.HostIf
	if hostIf == "" {
		hostIf = "host-only"
	}
	// The address is shown as observed only when doctor saw it there.
	hostAddr := hostIf + " " + n.HostAddress.String()
	if f, ok := doctor.Find(b.in.Findings, doctor.CheckHostOnlyAddress); !ok || f.Status != doctor.StatusOK {
		hostAddr = hostIf + " (want " + n.HostAddress.String() + ")"
	}
	host := Node{ID: "host", Kind: KindHost, Cluster: "host", Lines: []string{"host", hostAddr}}
	b.findings(&host, doctor.LayerHost, "", nil)
	if _, ok := doctor.Find(b.in.Findings, doctor.CheckHostOnlyAddress); !ok {
		host.Problem = true
		host.Lines = append(host.Lines, "! host side: not observed")
	}
	b.add(host)
	return host
}

// addUplink adds dom0's uplink port node with its PROMISC flag.
func (b *builder) addUplink() Node {
	n := b.in.Spec.Network
	up := Node{ID: "port:" + n.Uplink, Kind: KindPort, Cluster: "dom0",
		Lines: []string{n.Uplink + " (uplink)", "PROMISC " + b.observed("promisc", n.Uplink+" PROMISC flag")}}
	b.items(&up, "uplink", "promisc")
	b.findings(&up, doctor.LayerDom0, "", []string{doctor.CheckUplink})
	b.add(up)
	return up
}

// addBridge adds dom0's bridge node with its address and state.
func (b *builder) addBridge() Node {
	n := b.in.Spec.Network
	br := Node{ID: "bridge:" + n.Bridge, Kind: KindBridge, Cluster: "dom0",
		Lines: []string{n.Bridge + " (bridge)", b.observed("address", n.Bridge+" address"), "state " + b.observed("bridge", n.Bridge+" state")}}
	b.items(&br, "bridge", "address")
	b.findings(&br, doctor.LayerDom0, "", []string{doctor.CheckBridge})
	b.add(br)
	return br
}

// addServices adds dom0's services node: forwarding, NAT, dnsmasq and
// the DHCP range.
func (b *builder) addServices() Node {
	n := b.in.Spec.Network
	fwd := onOff(b.observed("forwarding", "net.ipv4.ip_forward") == "1")
	nat := "off (spec)"
	if n.NAT {
		nat = onOff(b.stepOK("nat"))
	}
	dns := "dnsmasq " + b.observed("dnsmasq", "process")
	if it, ok := b.itemPrefix("dnsmasq", "config "); ok && !it.OK {
		dns += " (config " + it.Observed + ")"
	}
	svc := Node{ID: "dom0", Kind: KindService, Cluster: "dom0",
		Lines: []string{"dom0", "forwarding " + fwd, "NAT " + nat, dns, fmt.Sprintf("DHCP %s–%s", n.DHCP.Start, n.DHCP.End)}}
	b.items(&svc, "forwarding", "nat", "dnsmasq", "pins", "preflight")
	b.findings(&svc, doctor.LayerDom0, "", []string{"agent", doctor.CheckIPForward, doctor.CheckDnsmasq,
		doctor.CheckServerConflict, doctor.CheckForwardPolicy, doctor.CheckDockerFirewalld,
		doctor.CheckDnsmasqVersion, doctor.CheckIPTablesVersion})
	b.add(svc)
	return svc
}

// linkDom0 adds the edges from the host through dom0 to the outside.
func (b *builder) linkDom0(host, up, br, svc, wan Node) {
	link := "host-only"
	if b.in.Status.Target == "sim" {
		link = "veth"
	}
	b.edge(host.ID, up.ID, link, host.Problem || up.Problem)
	b.edge(up.ID, br.ID, "port", up.Problem || br.Problem)
	b.edge(br.ID, svc.ID, "", false)
	b.edge(svc.ID, wan.ID, "MASQUERADE", b.in.Spec.Network.NAT && !b.stepOK("nat"))
}

// addGuest adds a guest's bridge port and guest nodes and links them to
// the bridge br.
func (b *builder) addGuest(gs provision.GuestStatus, br Node) {
	port := gs.Port
	pn := Node{ID: "port:" + gs.Name, Kind: KindPort, Cluster: "dom0", Lines: []string{orUnknown(port)}}
	if port == "" {
		pn.Lines = append(pn.Lines, "MAC not learned by "+b.in.Spec.Network.Bridge)
		pn.Problem = true
	}
	b.add(pn)

	lease := b.observed(provision.GuestStep(gs.Name), "lease")
	fromHost := b.hostProbe(gs)
	g := Node{ID: GuestNodeID(gs.Name), Kind: KindGuest, Cluster: "guests",
		Lines: []string{gs.Name, gs.MAC, "lease " + lease, gs.State,
			"from dom0: " + healthy(gs.Healthy), "from host: " + fromHost}}
	g.Problem = !gs.Healthy || gs.State != "running" || fromHost != "ok"
	b.items(&g, provision.GuestStep(gs.Name))
	b.findings(&g, doctor.LayerGuest, gs.Name, nil)
	b.add(g)
	b.edge(br.ID, pn.ID, "", br.Problem || pn.Problem)
	b.edge(pn.ID, g.ID, "eth0", pn.Problem || g.Problem)
}

type builder struct {
	in Input
	g  Graph
}

func (b *builder) add(n Node) {
	b.g.Nodes = append(b.g.Nodes, n)
	if n.Problem {
		b.g.Problems = append(b.g.Problems, n.ID)
	}
}

func (b *builder) edge(from, to, label string, problem bool) {
	b.g.Edges = append(b.g.Edges, Edge{From: from, To: to, Label: label, Problem: problem})
}

// rows is the status table: status's items, then doctor's findings.
func (b *builder) rows() {
	for _, s := range b.in.Status.Steps {
		for _, it := range s.Items {
			b.g.Rows = append(b.g.Rows, Row{Layer: "status", Subject: s.Step, Check: it.Name, Observed: it.Observed, OK: it.OK})
		}
		if s.Error != "" {
			b.g.Rows = append(b.g.Rows, Row{Layer: "status", Subject: s.Step, Check: "error", Observed: s.Error})
		}
	}
	for _, f := range b.in.Findings {
		b.g.Rows = append(b.g.Rows, Row{Layer: string(f.Layer), Subject: f.Subject, Check: f.Check, Observed: f.Detail, OK: f.Status != doctor.StatusFail})
	}
}

func (b *builder) item(step, name string) (provision.Item, bool) {
	for _, s := range b.in.Status.Steps {
		if s.Step != step {
			continue
		}
		for _, it := range s.Items {
			if it.Name == name {
				return it, true
			}
		}
	}
	return provision.Item{}, false
}

func (b *builder) itemPrefix(step, prefix string) (provision.Item, bool) {
	for _, s := range b.in.Status.Steps {
		if s.Step != step {
			continue
		}
		for _, it := range s.Items {
			if strings.HasPrefix(it.Name, prefix) {
				return it, true
			}
		}
	}
	return provision.Item{}, false
}

// observed is an item's observed value, "unknown" when status lacks it.
func (b *builder) observed(step, name string) string {
	if it, ok := b.item(step, name); ok && it.Observed != "" {
		return it.Observed
	}
	return "unknown"
}

// stepOK: the step ran and every item is as desired.
func (b *builder) stepOK(step string) bool {
	for _, s := range b.in.Status.Steps {
		if s.Step != step {
			continue
		}
		if s.Error != "" || s.Status == provision.StatusFailed {
			return false
		}
		for _, it := range s.Items {
			if !it.OK {
				return false
			}
		}
		return true
	}
	return false
}

// items marks n a problem when a step failed or an item drifted, and
// adds each drifted item as a line.
func (b *builder) items(n *Node, steps ...string) {
	for _, step := range steps {
		found := false
		for _, s := range b.in.Status.Steps {
			if s.Step != step {
				continue
			}
			found = true
			if s.Error != "" {
				n.Problem = true
				n.Lines = append(n.Lines, "! "+step+": "+clip(s.Error))
			}
			for _, it := range s.Items {
				if !it.OK {
					n.Problem = true
					n.Lines = append(n.Lines, "! "+clip(it.String()))
				}
			}
		}
		if !found && step != "pins" && step != "preflight" {
			n.Problem = true
			n.Lines = append(n.Lines, "! "+step+": not observed")
		}
	}
}

// findings marks n a problem for each failed doctor finding of that layer
// (and subject), restricted to checks when given.
func (b *builder) findings(n *Node, layer doctor.Layer, subject string, checks []string) {
	for _, f := range b.in.Findings {
		if f.Layer != layer || f.Subject != subject || f.Status != doctor.StatusFail {
			continue
		}
		if checks != nil && !contains(checks, f.Check) {
			continue
		}
		n.Problem = true
		n.Lines = append(n.Lines, "! "+f.Check+": "+clip(f.Detail))
	}
}

// hostProbe is the probe from the host side: doctor's path verdict, or
// the status result's host_probe when doctor did not run.
func (b *builder) hostProbe(g provision.GuestStatus) string {
	for _, f := range b.in.Findings {
		if f.Layer == doctor.LayerGuest && f.Subject == g.Name && f.Check == doctor.CheckGuestPath {
			if f.Status == doctor.StatusOK {
				return "ok"
			}
			return "failed"
		}
	}
	if g.HostProbe != "" {
		if g.HostProbe == "ok" {
			return "ok"
		}
		return "failed"
	}
	return "unknown"
}

func healthy(ok bool) string {
	if ok {
		return "healthy"
	}
	return "unhealthy"
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

func orUnknown(s string) string {
	if s == "" {
		return "port unknown"
	}
	return s
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// clip keeps a problem line readable inside a box.
func clip(s string) string {
	const max = 72
	r := []rune(s)
	if len(r) > max {
		return string(r[:max-1]) + "…"
	}
	return s
}
