package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/service/check"
	"github.com/labctl/labctl/vmctl"
	"github.com/labctl/labctl/vmctl/vbox"
	"github.com/spf13/cobra"
)

// hostOnlyAdapter is the VM's host-only NIC (the Vagrantfile's adapter 2).
const hostOnlyAdapter = 2

// doctorReport is `labctl doctor --json`.
type doctorReport struct {
	Schema   int              `json:"schema"`
	Command  string           `json:"command"`
	Lab      string           `json:"lab"`
	Target   string           `json:"target"`
	OK       bool             `json:"ok"`
	Findings []doctor.Finding `json:"findings"`
}

func newDoctorCmd(a *app) *cobra.Command {
	var vm string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Diagnose the lab in three layers (host, dom0, guests): each finding ok/warn/fail with its meaning and the exact fix",
		Long: `doctor checks the host (VirtualBox: networks.conf, the VM's host-only
adapter and promiscuous policy, nested VT-x, VirtualBox's DHCP server, the
route), dom0 (Xen, tools, bridge, uplink, dnsmasq, rival DHCP/DNS servers,
FORWARD policy, Docker/firewalld) and each deployed guest (lease, ARP, probe
from dom0, probe from the host). When dom0 reaches a guest and the host
does not, it blames the VirtualBox layer. It changes nothing; it exits 1
when any finding fails. Every check: docs/doctor.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			ts, err := parseTarget(a.target)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			if ts.kind == targetVagrant && !cmd.Flags().Changed("vm") {
				if id := vagrantVMID(ts.dir, a.remote.machine); id != "" {
					vm = id
				}
			}
			fs := diagnosis{a}.doctor(cmd.Context(), cmd, spec, ts, vm)
			return diagnosis{a}.printDoctor(cmd.OutOrStdout(), spec, fs)
		},
	}
	addTargetFlags(cmd, a)
	addJSONFlag(cmd, a)
	cmd.Flags().StringVar(&vm, "vm", envOr("LABCTL_VM_NAME", "labctl-dom0"),
		"VirtualBox VM running dom0, for the host checks (vagrant target: read from .vagrant/ unless given) ($LABCTL_VM_NAME)")
	return cmd
}

// doctor runs the three layers. A layer that cannot be reached becomes a
// failed finding; doctor itself only errs on bad input.
func (a diagnosis) doctor(ctx context.Context, cmd *cobra.Command, spec provision.Spec, ts targetSpec, vm string) []doctor.Finding {
	complete := a.fixCompleter(cmd, spec)
	host := a.hostFindings(ctx, spec, ts, vm)
	var out []doctor.Finding
	out = append(out, host...)
	if ts.kind == targetVagrant {
		// What vagrant up will install, checked without the VM.
		out = append(out, doctor.VMPlanDir(ts.dir, os.LookupEnv)...)
	}

	res, remote, err := a.doctorOnDom0(ctx, spec)
	if err != nil {
		out = append(out, doctor.Finding{Layer: doctor.LayerDom0, Check: "agent", Status: doctor.StatusFail,
			Detail:  err.Error(),
			Meaning: "labctl could not run its agent on dom0: dom0's and the guests' checks were not made",
			Fix:     reachFix(spec, ts)})
		return completeAll(out, complete)
	}
	if len(remote) == 0 && res.Error != "" {
		out = append(out, doctor.Finding{Layer: doctor.LayerDom0, Check: "agent", Status: doctor.StatusFail,
			Detail: res.Error, Meaning: "the agent on dom0 ran but made no checks"})
	}
	var guestFs []doctor.Finding
	for _, f := range remote {
		if f.Layer == doctor.LayerGuest {
			guestFs = append(guestFs, f)
		} else {
			out = append(out, f)
		}
	}
	// Each guest: dom0's findings, then the path verdict from both probes.
	dial := a.hostDial(spec)
	for _, g := range res.Guests {
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
		hp := probeFromHostOnce(ctx, dial, g, spec.Guests.Port)
		bf := doctor.BlameProbes(doctor.GuestProbes{Guest: g.Name, Dom0: dom0Probe, Host: hp}, vm, hostOnlyAdapter)
		a.adaptBlame(&bf, spec, ts, dom0Probe, hp, host)
		out = append(out, bf)
	}
	// Guest findings of guests the result did not list (a torn record).
	for _, f := range guestFs {
		listed := false
		for _, g := range res.Guests {
			listed = listed || g.Name == f.Subject
		}
		if !listed {
			out = append(out, f)
		}
	}
	return completeAll(out, complete)
}

// doctorOnDom0 runs the agent's doctor verb on the target.
func (a diagnosis) doctorOnDom0(ctx context.Context, spec provision.Spec) (provision.Result, []doctor.Finding, error) {
	c, err := a.openDom0(ctx, spec)
	if err != nil {
		return provision.Result{}, nil, err
	}
	defer c.Close()
	req := provision.AgentRequest{Spec: spec, StateRoot: c.stateRoot, NoResolv: c.noResolv}
	if c.t == nil {
		r, fs := provision.LocalDoctor(ctx, req, provision.Options{Log: a.log})
		return r, fs, nil
	}
	return provision.CallDoctor(ctx, c.t, c.exe, req)
}

// probeFromHostOnce makes the host-side probe: the contract's answer to
// no credentials, like deploy's probe.
func probeFromHostOnce(ctx context.Context, dial check.DialFunc, g provision.GuestStatus, port int) doctor.ProbeResult {
	target := net.JoinHostPort(g.IP, strconv.Itoa(port))
	p := doctor.ProbeResult{From: doctor.LayerHost, Target: target, Ran: true}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := check.Health(ctx, dial, target, 2*time.Second); err != nil {
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
func (a diagnosis) adaptBlame(f *doctor.Finding, spec provision.Spec, ts targetSpec, d, h doctor.ProbeResult, host []doctor.Finding) {
	if f.Status != doctor.StatusFail {
		return
	}
	switch {
	case d.OK && !h.OK && ts.kind == targetSim:
		f.Meaning = "dom0 reaches the guest, so the guest, " + spec.Network.Bridge + " and dnsmasq work; the host does not, so the VirtualBox layer drops it — " +
			"simulated here by the veth " + vmctl.SimHostIf + " ═ " + spec.Network.Uplink + ": the host's end is down, or dom0's end is not a port of " + spec.Network.Bridge
		f.Fix = provision.FixProvision
		for _, hf := range host {
			if hf.Status == doctor.StatusFail && hf.Fix != "" {
				f.Fix = hf.Fix // the host's end is what is broken
				break
			}
		}
	case !d.OK && !h.OK && provision.ConsoleCommand(spec, spec.Guests.Runtime, "x") == nil:
		// BlameProbes says to look at the console; a runtime without an
		// interactive one is redeployed instead.
		f.Fix = provision.FixDeploy
	}
}

// hostFindings is the host layer: VirtualBox's checks where VirtualBox
// is (or must be); the simulated host-only link for the sim; otherwise
// one finding saying what was not checked.
func (a diagnosis) hostFindings(ctx context.Context, spec provision.Spec, ts targetSpec, vm string) []doctor.Finding {
	if ts.kind == targetSim {
		host, dom0, _ := vmctl.SimNames(spec.Lab)
		return doctor.CheckSimHost(doctor.SimHostConfig{HostNS: host, Dom0NS: dom0, HostIf: vmctl.SimHostIf,
			Uplink: spec.Network.Uplink, HostAddr: spec.HostAddr(), Dom0Addr: spec.BridgeAddr().Addr(), Subnet: spec.Subnet()})
	}
	_, vboxErr := exec.LookPath("VBoxManage")
	if ts.kind == targetVagrant || vboxErr == nil {
		cfg := doctor.HostConfig{VM: vm, Subnet: spec.Subnet(), HostAddr: spec.HostAddr().Addr(),
			Dom0Addr: spec.BridgeAddr().Addr(), Adapter: hostOnlyAdapter}
		fs, err := doctor.CheckHost(ctx, doctor.HostDeps{VBox: vbox.New(vbox.ExecRunner{}, "", a.log), Net: doctor.SystemNet{}, Log: a.log}, cfg)
		if err != nil {
			return []doctor.Finding{{Layer: doctor.LayerHost, Check: "host", Status: doctor.StatusFail, Detail: err.Error()}}
		}
		return fs
	}
	if ts.kind == targetLocal {
		return []doctor.Finding{{Layer: doctor.LayerHost, Check: "virtualbox", Status: doctor.StatusOK,
			Detail: "--target local: labctl runs on dom0 itself; the host layer is checked from the host (labctl doctor --target vagrant or ssh://…)"}}
	}
	return []doctor.Finding{{Layer: doctor.LayerHost, Check: "virtualbox", Status: doctor.StatusWarn,
		Detail:  "VBoxManage is not on this machine's PATH: the VirtualBox layer was not checked",
		Meaning: "if dom0 is a VirtualBox VM, its host-only adapter, promiscuous policy, nested VT-x and VirtualBox's DHCP server are unchecked; run labctl doctor on the machine that runs VirtualBox"}}
}

// reachFix is what to do when dom0's agent cannot be reached.
func reachFix(spec provision.Spec, ts targetSpec) string {
	switch ts.kind {
	case targetSim:
		return "labctl sim up"
	case targetVagrant:
		return "vagrant up  # in " + ts.dir
	}
	return ""
}

// vagrantVMID is VirtualBox's id of the Vagrant machine, which Vagrant
// keeps in .vagrant/machines/<name>/virtualbox/id.
func vagrantVMID(dir, machine string) string {
	if machine == "" {
		machine = "default"
	}
	b, err := os.ReadFile(filepath.Join(dir, ".vagrant", "machines", machine, "virtualbox", "id"))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// fixCompleter gives every bare "labctl VERB" in a fix (the agent's
// "labctl provision" and "labctl deploy", the sim's "labctl sim up", …)
// this invocation's flags, so each is the exact command to run here.
func (a diagnosis) fixCompleter(cmd *cobra.Command, spec provision.Spec) func(string) string {
	return func(fix string) string {
		for _, verb := range hintVerbs {
			fix = replaceWord(fix, "labctl "+verb, a.hint(cmd, spec.Lab, verb))
		}
		return fix
	}
}

// replaceWord replaces old where it is a whole command (followed by the
// end, a space or a shell separator), so "labctl deploy" is not found
// inside "labctl deployment".
func replaceWord(s, old, new string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, old)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(old)
		b.WriteString(s[:i])
		if end == len(s) || strings.ContainsRune(" ;&|)", rune(s[end])) {
			b.WriteString(new)
		} else {
			b.WriteString(old)
		}
		s = s[end:]
	}
}

func completeAll(fs []doctor.Finding, complete func(string) string) []doctor.Finding {
	for i := range fs {
		fs[i].Fix = complete(fs[i].Fix)
	}
	return fs
}

// printDoctor prints the findings (a table, then each problem's meaning
// and fix; or JSON) and maps them to the exit code.
func (a diagnosis) printDoctor(w io.Writer, spec provision.Spec, fs []doctor.Finding) error {
	worst := doctor.Worst(fs)
	if a.jsonOut {
		if fs == nil {
			fs = []doctor.Finding{} // [] never null (docs/json.md)
		}
		if err := writeJSON(w, doctorReport{Schema: provision.SchemaVersion, Command: "doctor", Lab: spec.Lab, Target: a.target,
			OK: worst != doctor.StatusFail, Findings: fs}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "LAYER\tCHECK\tSUBJECT\tSTATUS\tDETAIL")
		for _, f := range fs {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Layer, f.Check, f.Subject, f.Status, f.Detail)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, f := range fs {
			if f.Status == doctor.StatusOK {
				continue
			}
			name := string(f.Layer) + "/" + f.Check
			if f.Subject != "" {
				name += " " + f.Subject
			}
			fmt.Fprintf(w, "\n%s %s: %s\n", f.Status, name, f.Detail)
			if f.Meaning != "" {
				fmt.Fprintf(w, "  meaning: %s\n", f.Meaning)
			}
			if f.Fix != "" {
				fmt.Fprintf(w, "  fix:     %s\n", f.Fix)
			}
		}
		counts := map[doctor.Status]int{}
		for _, f := range fs {
			counts[f.Status]++
		}
		fmt.Fprintf(w, "\nlab %s: %d ok, %d warn, %d fail\n", spec.Lab, counts[doctor.StatusOK], counts[doctor.StatusWarn], counts[doctor.StatusFail])
	}
	if worst == doctor.StatusFail {
		n := 0
		for _, f := range fs {
			if f.Status == doctor.StatusFail {
				n++
			}
		}
		return &exitError{exitFail, fmt.Errorf("doctor: %d checks failed in lab %s", n, spec.Lab)}
	}
	return nil
}
