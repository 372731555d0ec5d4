package doctor

import "fmt"

// CheckGuestPath is the id of the finding BlameProbes returns.
const CheckGuestPath = "guest-path"

// ProbeResult is one health probe of a guest (HTTP GET of the auth
// service, or a ping), made from dom0 or from the host.
type ProbeResult struct {
	From   Layer  // LayerDom0 or LayerHost
	Target string // "192.168.77.10:8088"
	Ran    bool   // false when the probe could not be made at all
	OK     bool
	Detail string // status line, or the error
}

// GuestProbes pairs the two probes of one guest.
type GuestProbes struct {
	Guest string
	Dom0  ProbeResult
	Host  ProbeResult
}

// BlameProbes applies the rule: when dom0 reaches the guest and the host
// does not, the guest and dom0's bridge work and what lies between host and
// dom0 drops the traffic — VirtualBox's host-only adapter (promiscuous
// policy, attachment). vm and adapter name the VirtualBox side for the fix.
func BlameProbes(p GuestProbes, vm string, adapter int) Finding {
	f := Finding{Layer: LayerGuest, Check: CheckGuestPath, Subject: p.Guest}
	d, h := p.Dom0, p.Host
	seen := fmt.Sprintf("from dom0: %s; from the host: %s", probeWord(d), probeWord(h))
	switch {
	case !d.Ran || !h.Ran:
		f.Status = StatusWarn
		f.Detail = fmt.Sprintf("guest %s: %s", p.Guest, seen)
		f.Meaning = "both probes are needed to tell where the path breaks"
	case d.OK && h.OK:
		f.Status = StatusOK
		f.Detail = fmt.Sprintf("guest %s answers %s", p.Guest, seen)
	case d.OK && !h.OK:
		f.Status = StatusFail
		f.Detail = fmt.Sprintf("guest %s: %s", p.Guest, seen)
		f.Meaning = "dom0 reaches the guest, so the guest, br0 and dnsmasq work; the host does not, so the VirtualBox layer drops it: " +
			"the host-only adapter's promiscuous policy (frames for the guest's Xen MAC are dropped unless it is allow-all) " +
			"or the adapter's attachment. Run the host checks (labctl doctor) for the adapter's state"
		f.Fix = fmt.Sprintf("VBoxManage controlvm %s nicpromisc%d allow-all", shellQuote(vm), adapter)
	case !d.OK && !h.OK:
		f.Status = StatusFail
		f.Detail = fmt.Sprintf("guest %s: %s", p.Guest, seen)
		f.Meaning = "dom0 itself cannot reach the guest: look at the guest and dom0 (is it running, did it get its lease, " +
			"is its vif on br0, FORWARD rules); VirtualBox is not in question yet"
		f.Fix = "xl console " + shellQuote(p.Guest)
	default: // host OK, dom0 not
		f.Status = StatusWarn
		f.Detail = fmt.Sprintf("guest %s: %s", p.Guest, seen)
		f.Meaning = "the host reaches the guest but dom0 does not: the guest works; dom0's own probe (its route or source address) is at fault"
	}
	return f
}

func probeWord(r ProbeResult) string {
	switch {
	case !r.Ran:
		return "not run"
	case r.OK:
		return "ok " + r.Detail
	default:
		return "failed " + r.Detail
	}
}
