package doctor

import (
	"fmt"
	"strings"
)

// Guest check ids (Finding.Subject names the guest). The probe from the
// host and the verdict on where the path breaks are CheckGuestPath,
// made on the host by BlameProbes.
const (
	CheckGuestState = "guest-state"
	CheckLease      = "lease"
	CheckNeighbor   = "arp"
	CheckProbeDom0  = "probe-dom0"
)

// GuestConfig says how to phrase fixes for the guest layer.
type GuestConfig struct {
	// Deploy is the exact command that (re)starts guests ("labctl deploy";
	// the host adds its --target and --lab).
	Deploy string
	// Logs is the command showing a guest's console, with %s for the
	// guest's name ("labctl logs %s"; on Xen "xl console %s" also works).
	Logs string
}

// GuestObs is what dom0 observed of one deployed guest.
type GuestObs struct {
	Name    string
	MAC     string // 00:16:3e:…
	IP      string // the pinned address
	Port    int
	Runtime string // process or xen

	Running  bool
	State    string // the runtime's word ("running", "stopped", "crashed")
	StateErr error

	// LeaseIP is the address of the guest's unexpired lease ("" for none);
	// LeaseErr when the lease file cannot be read.
	LeaseIP  string
	LeaseErr error

	// Neighbor is dom0's ARP entry for the guest's address on the bridge:
	// its MAC and state ("REACHABLE", "STALE", "FAILED", …); NeighborMAC
	// is empty when there is no entry.
	NeighborMAC   string
	NeighborState string
	NeighborErr   error

	Dom0Probe ProbeResult
}

// CheckGuest turns one guest's observations into its dom0-side findings.
func CheckGuest(cfg GuestConfig, o GuestObs) []Finding {
	logs := fmt.Sprintf(cfg.Logs, o.Name)
	return []Finding{
		guestStateFinding(cfg, o, logs),
		guestLeaseFinding(cfg, o),
		guestNeighborFinding(cfg, o),
		guestProbeFinding(cfg, o, logs),
	}
}

// guestFinding is an empty guest-layer finding for check on o's guest.
func guestFinding(o GuestObs, check string) Finding {
	return Finding{Layer: LayerGuest, Check: check, Subject: o.Name}
}

// guestStateFinding reports whether the runtime says the guest runs;
// logs is where its console log is.
func guestStateFinding(cfg GuestConfig, o GuestObs, logs string) Finding {
	st := guestFinding(o, CheckGuestState)
	switch {
	case o.StateErr != nil:
		st.Status, st.Detail = StatusFail, o.StateErr.Error()
		st.Meaning = "the " + o.Runtime + " runtime cannot tell whether the guest runs"
	case !o.Running:
		st.Status, st.Detail = StatusFail, fmt.Sprintf("%s is %s (%s runtime)", o.Name, orNone(o.State), o.Runtime)
		st.Meaning = "the guest is not running: nothing answers at " + o.IP + "; its console log says why it stopped (" + logs + ")"
		st.Fix = cfg.Deploy
	default:
		st.Status, st.Detail = StatusOK, fmt.Sprintf("%s is %s (%s runtime)", o.Name, o.State, o.Runtime)
	}
	return st
}

// guestLeaseFinding reports whether dnsmasq leased the guest its pinned
// address.
func guestLeaseFinding(cfg GuestConfig, o GuestObs) Finding {
	ls := guestFinding(o, CheckLease)
	switch {
	case o.LeaseErr != nil:
		ls.Status, ls.Detail = StatusFail, o.LeaseErr.Error()
		ls.Meaning = "dnsmasq's lease file cannot be read: dnsmasq never ran, or its state directory is gone"
		ls.Fix = cfg.Deploy
	case o.LeaseIP == "":
		ls.Status, ls.Detail = StatusFail, fmt.Sprintf("no unexpired lease for %s (pinned to %s)", o.MAC, o.IP)
		ls.Meaning = "the guest has no address from dnsmasq: it did not ask (not booted, vif not on the bridge), " +
			"dnsmasq did not answer, or another DHCP server did"
		ls.Fix = cfg.Deploy
	case o.LeaseIP != o.IP:
		ls.Status, ls.Detail = StatusFail, fmt.Sprintf("%s leased %s, but its pin is %s", o.MAC, o.LeaseIP, o.IP)
		ls.Meaning = "the guest is not where labctl looks for it: its pin was not loaded when it asked, or another DHCP server answered"
		ls.Fix = cfg.Deploy
	default:
		ls.Status, ls.Detail = StatusOK, fmt.Sprintf("%s leased %s", o.MAC, o.LeaseIP)
	}
	return ls
}

// guestNeighborFinding reports whether dom0's ARP entry for the guest's
// address points at the guest's MAC.
func guestNeighborFinding(cfg GuestConfig, o GuestObs) Finding {
	nb := guestFinding(o, CheckNeighbor)
	state := strings.ToUpper(o.NeighborState)
	switch {
	case o.NeighborErr != nil:
		nb.Status, nb.Detail = StatusWarn, o.NeighborErr.Error()
		nb.Meaning = "dom0's neighbour table cannot be read"
	case o.NeighborMAC == "" || state == "FAILED" || state == "INCOMPLETE":
		nb.Status = StatusFail
		nb.Detail = fmt.Sprintf("dom0 has no ARP answer for %s (%s)", o.IP, orNone(state))
		nb.Meaning = "nothing on the bridge answers ARP for the guest's address: the guest is down, has no address, or its vif is not on the bridge"
		nb.Fix = cfg.Deploy
	case !strings.EqualFold(o.NeighborMAC, o.MAC):
		nb.Status = StatusFail
		nb.Detail = fmt.Sprintf("%s is at %s (%s), not at the guest's %s", o.IP, o.NeighborMAC, state, o.MAC)
		nb.Meaning = "another machine answers ARP for the guest's address: an address conflict on the lab network"
		nb.Fix = "find the machine with MAC " + o.NeighborMAC + " and take " + o.IP + " from it, then " + cfg.Deploy
	case state == "REACHABLE" || state == "PERMANENT" || state == "NOARP" || o.Dom0Probe.OK:
		nb.Status, nb.Detail = StatusOK, fmt.Sprintf("%s is at %s (%s)", o.IP, o.NeighborMAC, state)
	default:
		// STALE, DELAY, PROBE: an old answer, not confirmed by the probe.
		nb.Status = StatusWarn
		nb.Detail = fmt.Sprintf("%s was at %s (%s, unconfirmed)", o.IP, o.NeighborMAC, state)
		nb.Meaning = "the guest answered ARP before but has not been heard from since"
	}
	return nb
}

// guestProbeFinding reports dom0's own probe of the guest's service;
// logs is where the guest's console log is.
func guestProbeFinding(cfg GuestConfig, o GuestObs, logs string) Finding {
	pr := guestFinding(o, CheckProbeDom0)
	p := o.Dom0Probe
	switch {
	case !p.Ran:
		pr.Status, pr.Detail = StatusWarn, "not probed: "+p.Detail
		pr.Meaning = "without dom0's probe, a failure from the host cannot be placed"
	case p.OK:
		pr.Status, pr.Detail = StatusOK, fmt.Sprintf("%s answers %s", p.Target, p.Detail)
	default:
		pr.Status, pr.Detail = StatusFail, fmt.Sprintf("%s: %s", p.Target, p.Detail)
		pr.Meaning = "dom0 itself cannot talk to the guest's service: look at the guest (" + logs + "), its lease and ARP above"
		pr.Fix = cfg.Deploy
	}
	return pr
}
