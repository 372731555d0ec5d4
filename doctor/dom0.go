package doctor

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/labctl/labctl/netsetup"
)

// Dom0 check ids, in the order CheckDom0 reports them, after the
// runtimes' own checks (Dom0Obs.Runtimes; the xen runtime's are "xen",
// "xen-version", "hvm", "mirage", "opam", "ocaml").
const (
	CheckDnsmasqVersion  = "dnsmasq-version"
	CheckIPTablesVersion = "iptables-version"
	CheckBridge          = "bridge"
	CheckUplink          = "uplink"
	CheckIPForward       = "ip-forward"
	CheckDnsmasq         = "dnsmasq"
	CheckServerConflict  = "dhcp-dns-conflict"
	CheckForwardPolicy   = "forward-policy"
	CheckDockerFirewalld = "docker-firewalld"
)

// Dom0Config is what the dom0 layer checks against (from the lab spec).
type Dom0Config struct {
	Lab         string
	Bridge      string
	Uplink      string
	Address     netip.Prefix // the bridge's address
	Promiscuous bool
	// Runtime is guests.runtime: of the runtimes' own checks, only its
	// count (the sim's process runtime does without Xen and OCaml).
	Runtime string
	// Provision is the exact command that converges dom0, for fixes
	// ("labctl provision"; the host adds its --target and --lab).
	Provision string
	// DnsmasqConf is labctl's dnsmasq config path: a process started with
	// it is labctl's own, even when its pidfile is lost.
	DnsmasqConf string
}

// Dom0Obs is what was observed on dom0. Each source carries its own error:
// one unreadable source makes its checks fail, not the whole layer.
type Dom0Obs struct {
	// Runtimes are the registered runtimes' own dom0 checks, as each
	// runtime's adapter reports them (xen: the hypervisor and the
	// unikernel toolchain), meanings included.
	Runtimes []RuntimeObs

	// Tools are dnsmasq's and iptables' versions against labctl's
	// minimums, as provision's preflight reads them.
	Tools []ToolObs

	Links    []netsetup.Link
	LinksErr error

	IPForward    string // /proc/sys/net/ipv4/ip_forward
	IPForwardErr error

	// labctl's dnsmasq: live pid (0: not running), its config against the
	// spec ("current", "missing", "differs") and the bridge ifindex it
	// was started on.
	DnsmasqPid     int
	DnsmasqConf    string
	DnsmasqIfIndex int

	// Sockets are dom0's UDP and TCP sockets, Owners their holders.
	Sockets    []Socket
	Owners     map[uint64][]Proc
	SocketsErr error

	IPTablesSave []byte // `iptables-save`
	IPTablesErr  error

	Firewalld []Proc
}

// ToolObs is one tool's version against labctl's minimum.
type ToolObs struct {
	Tool     string // "dnsmasq", "iptables"
	Desired  string // ">= 2.80.0"
	Observed string // "2.90.0", or "missing: install …" when it does not run
	OK       bool
}

// RuntimeObs is one runtime's own dom0 checks.
type RuntimeObs struct {
	Name     string // its guests.runtime name
	Findings []Finding
}

// CheckDom0 turns dom0's observations into findings.
func CheckDom0(cfg Dom0Config, o Dom0Obs) []Finding {
	var out []Finding
	add := func(f Finding) {
		f.Layer = LayerDom0
		out = append(out, f)
	}
	for _, r := range o.Runtimes {
		for _, f := range r.Findings {
			add(runtimeFinding(cfg, r.Name, f))
		}
	}
	for _, t := range o.Tools {
		add(toolFinding(t, cfg))
	}
	br, haveBr := checkBridge(cfg, o)
	add(br)
	add(checkUplink(cfg, o))
	add(checkIPForward(cfg, o))
	add(checkDnsmasq(cfg, o, haveBr))
	for _, f := range checkConflicts(cfg, o) {
		add(f)
	}
	for _, f := range checkFirewall(cfg, o) {
		add(f)
	}
	return out
}

// runtimeFinding passes a runtime's own check through when the lab uses
// that runtime; for another runtime a failure is reported as not needed.
func runtimeFinding(cfg Dom0Config, runtime string, f Finding) Finding {
	if f.Status != StatusOK && runtime != cfg.Runtime {
		// Honest, not alarming: the sim's process runtime boots the
		// reference guest without a hypervisor or the OCaml toolchain.
		f.Status = StatusOK
		f.Detail = fmt.Sprintf("not needed: guests.runtime is %s (%s)", cfg.Runtime, f.Detail)
		f.Meaning, f.Fix = "", ""
	}
	return f
}

func toolFinding(t ToolObs, cfg Dom0Config) Finding {
	f := Finding{Check: t.Tool + "-version"}
	pkg := map[string]string{"dnsmasq": "dnsmasq-base"}[t.Tool]
	if pkg == "" {
		pkg = t.Tool
	}
	switch {
	case t.OK:
		f.Status, f.Detail = StatusOK, t.Tool+" "+t.Observed
	case strings.HasPrefix(t.Observed, "missing"):
		f.Status, f.Detail, f.Fix = StatusFail, t.Tool+" "+t.Observed, "apt-get install "+pkg
		f.Meaning = t.Tool + " is missing or does not run: " + cfg.Provision + " cannot converge dom0"
	default:
		f.Status, f.Detail, f.Fix = StatusFail, fmt.Sprintf("%s %s; labctl needs %s", t.Tool, t.Observed, t.Desired), "apt-get install "+pkg
		f.Meaning = "labctl relies on features of newer releases (dnsmasq bind-dynamic and hosts-file reload, iptables-restore --noflush --wait)"
	}
	return f
}

func checkBridge(cfg Dom0Config, o Dom0Obs) (Finding, bool) {
	f := Finding{Check: CheckBridge}
	if o.LinksErr != nil {
		f.Status, f.Detail = StatusFail, o.LinksErr.Error()
		f.Meaning = "dom0's interfaces cannot be listed"
		return f, false
	}
	br, found := netsetup.FindLink(o.Links, cfg.Bridge)
	switch {
	case !found:
		f.Status, f.Detail = StatusFail, cfg.Bridge+" does not exist"
		f.Meaning = "guests have no bridge to plug their vif into, dnsmasq has nothing to serve, and the host-only uplink leads nowhere"
		f.Fix = cfg.Provision
	case br.Type != "bridge":
		f.Status, f.Detail = StatusFail, fmt.Sprintf("%s is a %s, not a bridge", cfg.Bridge, br.Type)
		f.Meaning = "something else took the bridge's name; labctl will not replace it"
		f.Fix = "ip link delete " + cfg.Bridge + " && " + cfg.Provision
	case !br.Up:
		f.Status, f.Detail = StatusFail, cfg.Bridge+" is down"
		f.Meaning = "a down bridge forwards nothing: guests get no lease and nobody reaches them"
		f.Fix = cfg.Provision
	case !slices.Contains(br.Addrs, cfg.Address):
		f.Status, f.Detail = StatusFail, fmt.Sprintf("%s is up without %s (has %s)", cfg.Bridge, cfg.Address, prefixes(br.Addrs))
		f.Meaning = "the bridge lacks dom0's lab address: the host cannot reach dom0 there, and guests have no gateway or DHCP server"
		f.Fix = cfg.Provision
	default:
		var ports []string
		for _, l := range o.Links {
			if l.Master == cfg.Bridge {
				ports = append(ports, l.Name)
			}
		}
		f.Status = StatusOK
		f.Detail = fmt.Sprintf("%s is up with %s; ports: %s", cfg.Bridge, cfg.Address, orNone(strings.Join(ports, ", ")))
		return f, true
	}
	return f, found
}

func checkUplink(cfg Dom0Config, o Dom0Obs) Finding {
	f := Finding{Check: CheckUplink}
	if o.LinksErr != nil {
		f.Status, f.Detail = StatusFail, o.LinksErr.Error()
		f.Meaning = "dom0's interfaces cannot be listed"
		return f
	}
	up, found := netsetup.FindLink(o.Links, cfg.Uplink)
	switch {
	case !found:
		var names []string
		for _, l := range o.Links {
			if l.Name != "lo" {
				names = append(names, l.Name)
			}
		}
		f.Status, f.Detail = StatusFail, fmt.Sprintf("%s does not exist (interfaces: %s)", cfg.Uplink, strings.Join(names, ", "))
		f.Meaning = "the host-only NIC (VirtualBox adapter 2) is absent or has another name: the host cannot reach the lab"
		f.Fix = "set network.uplink in the lab spec to dom0's host-only NIC (ip -br link), then " + cfg.Provision
	case up.Master != cfg.Bridge:
		f.Status, f.Detail = StatusFail, fmt.Sprintf("%s is not a port of %s (master: %s)", cfg.Uplink, cfg.Bridge, orNone(up.Master))
		f.Meaning = "frames from the host arrive on the uplink but never reach the bridge: the host cannot reach the guests, while dom0 still can"
		f.Fix = cfg.Provision
	case !up.Up:
		f.Status, f.Detail = StatusFail, cfg.Uplink+" is down"
		f.Meaning = "the host-only link is down: nothing passes between the host and the lab"
		f.Fix = cfg.Provision
	case cfg.Promiscuous && !up.Promisc:
		f.Status, f.Detail = StatusWarn, cfg.Uplink+" is a port of "+cfg.Bridge+" but its PROMISC flag is off"
		f.Meaning = "the spec asks for the flag (the article sets it); the bridge raises promiscuity itself, so traffic usually still flows"
		f.Fix = cfg.Provision
	default:
		f.Status, f.Detail = StatusOK, fmt.Sprintf("%s is up, a port of %s, PROMISC %s", cfg.Uplink, cfg.Bridge, onOff(up.Promisc))
	}
	return f
}

func checkIPForward(cfg Dom0Config, o Dom0Obs) Finding {
	f := Finding{Check: CheckIPForward}
	switch {
	case o.IPForwardErr != nil:
		f.Status, f.Detail = StatusFail, o.IPForwardErr.Error()
		f.Meaning = "net.ipv4.ip_forward cannot be read"
	case o.IPForward != "1":
		f.Status, f.Detail = StatusFail, "net.ipv4.ip_forward = "+o.IPForward
		f.Meaning = "dom0 does not route: guests cannot reach anything beyond the lab subnet (the NAT is useless)"
		f.Fix = cfg.Provision
	default:
		f.Status, f.Detail = StatusOK, "net.ipv4.ip_forward = 1"
	}
	return f
}

func checkDnsmasq(cfg Dom0Config, o Dom0Obs, haveBr bool) Finding {
	f := Finding{Check: CheckDnsmasq}
	switch {
	case o.DnsmasqPid == 0:
		f.Status = StatusFail
		f.Detail = "labctl's dnsmasq is not running (config " + orNone(o.DnsmasqConf) + ")"
		f.Meaning = "no DHCP on " + cfg.Bridge + ": new guests get no address and running guests lose theirs at lease expiry"
		f.Fix = cfg.Provision
	case o.DnsmasqConf != "current":
		f.Status = StatusWarn
		f.Detail = fmt.Sprintf("dnsmasq pid %d runs, but its config is %s", o.DnsmasqPid, orNone(o.DnsmasqConf))
		f.Meaning = "it serves something other than the spec (edited by hand, or the spec changed); provision rewrites it and restarts dnsmasq"
		f.Fix = cfg.Provision
	default:
		if br, found := netsetup.FindLink(o.Links, cfg.Bridge); haveBr && found && o.DnsmasqIfIndex != 0 && br.Index != o.DnsmasqIfIndex {
			f.Status = StatusFail
			f.Detail = fmt.Sprintf("dnsmasq pid %d was started on a %s (index %d) that was deleted; the current one has index %d",
				o.DnsmasqPid, cfg.Bridge, o.DnsmasqIfIndex, br.Index)
			f.Meaning = "dnsmasq may not answer on the re-created bridge"
			f.Fix = cfg.Provision
			return f
		}
		f.Status, f.Detail = StatusOK, fmt.Sprintf("dnsmasq pid %d serves %s with the spec's config", o.DnsmasqPid, cfg.Bridge)
	}
	return f
}

// checkConflicts looks for another DHCP (UDP 67) or DNS (UDP/TCP 53)
// server that would answer on the bridge: any serving socket on those
// ports bound to the wildcard or the bridge's address whose holder is not
// labctl's dnsmasq.
func checkConflicts(cfg Dom0Config, o Dom0Obs) []Finding {
	f := Finding{Check: CheckServerConflict}
	if o.SocketsErr != nil {
		f.Status, f.Detail = StatusWarn, o.SocketsErr.Error()
		f.Meaning = "dom0's sockets cannot be read, so another DHCP or DNS server on " + cfg.Bridge + " cannot be ruled out"
		return []Finding{f}
	}
	var out []Finding
	type key struct {
		service string
		pid     int
	}
	seen := map[key]bool{}
	for _, s := range o.Sockets {
		service := ""
		switch {
		case s.Proto == "udp" && s.Local.Port() == 67:
			service = "DHCP"
		case s.Local.Port() == 53:
			service = "DNS"
		default:
			continue
		}
		a := s.Local.Addr()
		if !s.Serving() || !(a.IsUnspecified() || a == cfg.Address.Addr()) {
			continue
		}
		owners := o.Owners[s.Inode]
		if len(owners) == 0 {
			// Held by no process we can see (another PID namespace): it
			// cannot be labctl's own dnsmasq, whose pid we know.
			owners = []Proc{{Comm: "?", Cmdline: fmt.Sprintf("socket inode %d, holder not visible", s.Inode)}}
		}
		for _, p := range owners {
			ours := p.Pid != 0 && p.Pid == o.DnsmasqPid ||
				cfg.DnsmasqConf != "" && strings.Contains(p.Cmdline, "--conf-file="+cfg.DnsmasqConf)
			if ours {
				continue
			}
			k := key{service, p.Pid}
			if seen[k] {
				continue
			}
			seen[k] = true
			who := fmt.Sprintf("pid %d (%s: %s)", p.Pid, p.Comm, p.Cmdline)
			fix := fmt.Sprintf("kill %d", p.Pid)
			if p.Pid == 0 {
				who, fix = p.Cmdline, fmt.Sprintf("ss -lunp 'sport = :%d'  # find and stop it", s.Local.Port())
			}
			out = append(out, Finding{Check: CheckServerConflict, Status: StatusFail,
				Detail: fmt.Sprintf("another %s server listens on %s/%s: %s", service, s.Local, s.Proto, who),
				Meaning: fmt.Sprintf("it answers on %s next to labctl's dnsmasq: guests may take its lease (wrong address, no pin) or its answers; "+
					"stop it, and disable the service that starts it (systemctl disable --now <unit>)", cfg.Bridge),
				Fix: fix})
		}
	}
	if len(out) == 0 {
		f.Status, f.Detail = StatusOK, fmt.Sprintf("no other DHCP or DNS server on %s (UDP 67, UDP/TCP 53)", cfg.Bridge)
		return []Finding{f}
	}
	return out
}

// checkFirewall reads FORWARD's policy and labctl's jump, and whether
// Docker or firewalld manage the firewall.
func checkFirewall(cfg Dom0Config, o Dom0Obs) []Finding {
	pol := Finding{Check: CheckForwardPolicy}
	mgr := Finding{Check: CheckDockerFirewalld}
	if o.IPTablesErr != nil {
		pol.Status, pol.Detail = StatusFail, "iptables-save: "+o.IPTablesErr.Error()
		pol.Meaning = "dom0's firewall cannot be read"
		mgr.Status, mgr.Detail = StatusWarn, "iptables-save failed: Docker's chains cannot be looked for"
		return []Finding{pol, withFirewalld(cfg, mgr, o)}
	}
	saved, err := netsetup.ParseSave(o.IPTablesSave)
	if err != nil {
		pol.Status, pol.Detail = StatusFail, err.Error()
		pol.Meaning = "dom0's firewall cannot be parsed"
		mgr.Status, mgr.Detail = StatusWarn, "iptables-save unreadable: Docker's chains cannot be looked for"
		return []Finding{pol, withFirewalld(cfg, mgr, o)}
	}
	judgeForward(cfg, &pol, saved)
	if docker := dockerChains(saved); len(docker) > 0 {
		mgr.Status = StatusWarn
		mgr.Detail = "Docker's chains are present: " + strings.Join(docker, " ")
		mgr.Meaning = "Docker sets FORWARD's policy to DROP and puts its chains first in FORWARD each time it starts; " +
			"labctl's jump must stay ahead of them: converge again after Docker (re)starts"
		mgr.Fix = cfg.Provision
	}
	return []Finding{pol, withFirewalld(cfg, mgr, o)}
}

// forwardPolicy is the filter table's FORWARD policy, ACCEPT when the
// save does not set one.
func forwardPolicy(saved netsetup.Saved) string {
	if t := saved.Tables["filter"]; t != nil && t.Chains["FORWARD"] != "" {
		return t.Chains["FORWARD"]
	}
	return "ACCEPT"
}

// forwardJump is the index of labctl's jump to its chain among FORWARD's
// rules, -1 when there is none.
func forwardJump(cfg Dom0Config, rules []string) int {
	for i, r := range rules {
		if strings.HasSuffix(r, "-j "+netsetup.ChainForward) && strings.Contains(r, netsetup.Comment(cfg.Lab)) {
			return i
		}
	}
	return -1
}

// forwardShadow is the first unconditional DROP or REJECT among rules
// before index jump (among all rules when jump is -1), "" when none.
func forwardShadow(rules []string, jump int) string {
	// An unconditional DROP or REJECT before the jump shadows it.
	for i, r := range rules {
		if (jump < 0 || i < jump) && (r == "-j DROP" || r == "-j REJECT" || strings.HasPrefix(r, "-j REJECT ")) {
			return r
		}
	}
	return ""
}

// judgeForward fills pol from FORWARD's policy, labctl's jump and chain,
// and any rule that shadows the jump.
func judgeForward(cfg Dom0Config, pol *Finding, saved netsetup.Saved) {
	policy := forwardPolicy(saved)
	rules := saved.RulesOf("filter", "FORWARD")
	jump := forwardJump(cfg, rules)
	shadow := forwardShadow(rules, jump)
	hasChain := saved.HasChain("filter", netsetup.ChainForward)
	switch {
	case shadow != "" && jump >= 0:
		pol.Status = StatusFail
		pol.Detail = fmt.Sprintf("FORWARD has %q before labctl's jump to %s (rule %d)", shadow, netsetup.ChainForward, jump+1)
		pol.Meaning = "every forwarded packet is dropped before labctl's accepts: guests cannot reach out"
		pol.Fix = cfg.Provision
	case policy != "ACCEPT" && (jump < 0 || !hasChain):
		pol.Status = StatusFail
		pol.Detail = fmt.Sprintf("FORWARD policy %s and no jump to labctl's %s", policy, netsetup.ChainForward)
		pol.Meaning = "forwarded traffic of the lab (guests to the outside, and host to guests where br_netfilter is loaded) is dropped: " +
			"Docker or firewalld set the policy, and labctl's accepts are gone"
		pol.Fix = cfg.Provision
	case shadow != "":
		pol.Status = StatusFail
		pol.Detail = fmt.Sprintf("FORWARD has %q and no jump to labctl's %s", shadow, netsetup.ChainForward)
		pol.Meaning = "every forwarded packet is dropped: guests cannot reach out"
		pol.Fix = cfg.Provision
	case jump < 0 || !hasChain:
		pol.Status = StatusWarn
		pol.Detail = fmt.Sprintf("FORWARD policy %s; labctl's jump to %s is missing", policy, netsetup.ChainForward)
		pol.Meaning = "harmless while the policy is ACCEPT, but the first Docker or firewalld start (policy DROP) cuts the guests off"
		pol.Fix = cfg.Provision
	case policy != "ACCEPT":
		pol.Status = StatusOK
		pol.Detail = fmt.Sprintf("FORWARD policy %s, but labctl's jump to %s is rule %d: %s traffic is accepted", policy, netsetup.ChainForward, jump+1, cfg.Bridge)
	default:
		pol.Status = StatusOK
		pol.Detail = fmt.Sprintf("FORWARD policy ACCEPT; labctl's jump to %s is rule %d", netsetup.ChainForward, jump+1)
	}
}

// dockerChains lists Docker's chains in the filter and nat tables, as
// table/chain.
func dockerChains(saved netsetup.Saved) []string {
	var docker []string
	for _, table := range []string{"filter", "nat"} {
		if t := saved.Tables[table]; t != nil {
			for _, c := range t.Order {
				if c == "DOCKER" || strings.HasPrefix(c, "DOCKER-") {
					docker = append(docker, table+"/"+c)
				}
			}
		}
	}
	return docker
}

func withFirewalld(cfg Dom0Config, f Finding, o Dom0Obs) Finding {
	if len(o.Firewalld) > 0 {
		var pids []string
		for _, p := range o.Firewalld {
			pids = append(pids, fmt.Sprint(p.Pid))
		}
		detail := "firewalld runs (pid " + strings.Join(pids, ", ") + ")"
		if f.Detail != "" {
			detail = f.Detail + "; " + detail
		}
		f.Status, f.Detail = StatusWarn, detail
		f.Meaning = strings.TrimPrefix(f.Meaning+"; ", "; ") +
			"firewalld rewrites the firewall on reload and may reject forwarded traffic on " + cfg.Bridge + " unless it is in a trusted zone"
		f.Fix = fmt.Sprintf("firewall-cmd --permanent --zone=trusted --add-interface=%s && firewall-cmd --reload && %s", cfg.Bridge, cfg.Provision)
		return f
	}
	if f.Status == "" {
		f.Status, f.Detail = StatusOK, "no Docker chains, no firewalld"
	}
	return f
}

func prefixes(ps []netip.Prefix) string {
	if len(ps) == 0 {
		return "no IPv4 address"
	}
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, ", ")
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
