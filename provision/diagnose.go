package provision

import (
	"context"
	"net"
	"strconv"
	"time"

	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/service/check"
	"github.com/labctl/labctl/vmctl"
)

// Diagnosis is what labctl doctor gathered before judging: the host
// layer, dom0's agent's answer (or why there is none), and how the host
// reaches the guests.
type Diagnosis struct {
	Spec Spec
	// Host: the host layer's findings (and the VM plan's, for vagrant).
	Host []doctor.Finding
	// Dom0 and Remote: the agent's doctor result and its findings (dom0's
	// and the guests'); AgentErr when the agent could not be run.
	Dom0     GuestsResult
	Remote   []doctor.Finding
	AgentErr error
	// ReachFix is what to do when the agent cannot be reached.
	ReachFix string
	// Dial reaches a guest from the host side.
	Dial check.DialFunc
	// VM names dom0's VirtualBox VM in fixes.
	VM string
	// Sim: the host-only network is the sim's veth, not VirtualBox.
	Sim bool
}

// Diagnose puts the layers together: the host's findings, dom0's, and for
// each guest dom0's findings followed by the path verdict from both
// probes (dom0's, and one made now from the host). A layer that could not
// be reached is a failed finding, never an error.
func Diagnose(ctx context.Context, in Diagnosis) []doctor.Finding {
	out := append([]doctor.Finding(nil), in.Host...)
	if in.AgentErr != nil {
		return append(out, doctor.Finding{Layer: doctor.LayerDom0, Check: "agent", Status: doctor.StatusFail,
			Detail:  in.AgentErr.Error(),
			Meaning: "labctl could not run its agent on dom0: dom0's and the guests' checks were not made",
			Fix:     in.ReachFix})
	}
	if len(in.Remote) == 0 && in.Dom0.Error != "" {
		out = append(out, doctor.Finding{Layer: doctor.LayerDom0, Check: "agent", Status: doctor.StatusFail,
			Detail: in.Dom0.Error, Meaning: "the agent on dom0 ran but made no checks"})
	}
	var guestFs []doctor.Finding
	for _, f := range in.Remote {
		if f.Layer == doctor.LayerGuest {
			guestFs = append(guestFs, f)
		} else {
			out = append(out, f)
		}
	}
	// The host's probes side by side: a guest that does not answer costs
	// its 3 s, and one after another they would add up.
	hps := make([]doctor.ProbeResult, len(in.Dom0.Guests))
	eachBounded(len(hps), 8, func(i int) { hps[i] = in.hostProbe(ctx, in.Dom0.Guests[i]) })
	listed := map[string]bool{}
	for i, g := range in.Dom0.Guests {
		listed[g.Name] = true
		var dom0Probe doctor.ProbeResult
		for _, f := range guestFs {
			if f.Subject != g.Name {
				continue
			}
			out = append(out, f)
			if f.Check == doctor.CheckProbeDom0 {
				dom0Probe = doctor.ProbeResult{From: doctor.LayerDom0, Ran: f.Status != doctor.StatusWarn,
					OK: f.Status == doctor.StatusOK && g.Healthy, Detail: f.Detail}
			}
		}
		hp := hps[i]
		bf := doctor.BlameProbes(doctor.GuestProbes{Guest: g.Name, Dom0: dom0Probe, Host: hp}, in.VM, doctor.HostOnlyAdapter)
		in.adaptBlame(&bf, dom0Probe, hp)
		out = append(out, bf)
	}
	// Guest findings of guests the result did not list (a torn record).
	for _, f := range guestFs {
		if !listed[f.Subject] {
			out = append(out, f)
		}
	}
	return out
}

// hostProbe asks the guest once, from the host side, the contract's
// answer to no credentials (deploy's host probe, without its retries:
// doctor reports what it finds now).
func (in Diagnosis) hostProbe(ctx context.Context, g GuestStatus) doctor.ProbeResult {
	target := net.JoinHostPort(g.IP, strconv.Itoa(in.Spec.Guests.Port))
	p := doctor.ProbeResult{From: doctor.LayerHost, Target: target, Ran: true}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := probeFromHost(ctx, in.Dial, target, 2*time.Second, 0); err != nil {
		p.Detail = err.Error()
	} else {
		p.OK, p.Detail = true, check.HealthOK
	}
	return p
}

// adaptBlame rewrites BlameProbes' VirtualBox-specific fixes where the
// lab has no VirtualBox: in the sim the host-only adapter is the veth
// vboxnet4 ═ eth1, and a runtime without an interactive console (the
// process runtime) has no xl console to look at.
func (in Diagnosis) adaptBlame(f *doctor.Finding, d, h doctor.ProbeResult) {
	if f.Status != doctor.StatusFail {
		return
	}
	spec := in.Spec
	switch {
	case d.OK && !h.OK && in.Sim:
		f.Meaning = "dom0 reaches the guest, so the guest, " + spec.Network.Bridge + " and dnsmasq work; the host does not, so the VirtualBox layer drops it — " +
			"simulated here by the veth " + vmctl.SimHostIf + " ═ " + spec.Network.Uplink + ": the host's end is down, or dom0's end is not a port of " + spec.Network.Bridge
		f.Fix = FixProvision
		for _, hf := range in.Host {
			if hf.Status == doctor.StatusFail && hf.Fix != "" {
				f.Fix = hf.Fix // the host's end is what is broken
				break
			}
		}
	case !d.OK && !h.OK && ConsoleCommand(spec, spec.Guests.Runtime, "x") == nil:
		// BlameProbes says to look at the console; a runtime without an
		// interactive one is redeployed instead.
		f.Fix = FixDeploy
	}
}
