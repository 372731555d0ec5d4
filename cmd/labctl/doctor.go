package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/vmctl"
	"github.com/spf13/cobra"
)

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
	host := doctor.CheckHostLayer(ctx, hostLayer(spec, ts, vm, a.log))
	if ts.kind == targetVagrant {
		// What vagrant up will install, checked without the VM.
		host = append(host, doctor.VMPlanDir(ts.dir, os.LookupEnv)...)
	}
	var dom0 provision.GuestsResult
	res, remote, err := a.doctorOnDom0(ctx, spec)
	if err == nil {
		dom0 = *res
	}
	fs := provision.Diagnose(ctx, provision.Diagnosis{Spec: spec, Host: host, Dom0: dom0, Remote: remote, AgentErr: err,
		ReachFix: reachFix(spec, ts), Dial: a.hostDial(spec), VM: vm, Sim: ts.kind == targetSim})
	return completeAll(fs, a.fixCompleter(cmd, spec))
}

// doctorOnDom0 runs the agent's doctor verb on the target.
func (a diagnosis) doctorOnDom0(ctx context.Context, spec provision.Spec) (*provision.GuestsResult, []doctor.Finding, error) {
	c, err := a.openDom0(ctx, spec)
	if err != nil {
		return nil, nil, err
	}
	defer c.Close()
	req := provision.AgentRequest{Spec: spec, StateRoot: c.stateRoot, NoResolv: c.noResolv}
	if c.t == nil {
		r, fs := provision.LocalDoctor(ctx, req, provision.Options{Log: a.log})
		return r, fs, nil
	}
	return provision.CallDoctor(ctx, c.t, c.exe, req)
}

// hostLayer says which host checks apply to the target: the sim's veth,
// VirtualBox where the target is a Vagrant VM, none where labctl runs on
// dom0, VirtualBox if installed for any other.
func hostLayer(spec provision.Spec, ts targetSpec, vm string, log *slog.Logger) doctor.HostLayer {
	l := doctor.HostLayer{Log: log,
		VBox: doctor.HostConfig{VM: vm, Subnet: spec.Subnet(), HostAddr: spec.HostAddr().Addr(),
			Dom0Addr: spec.BridgeAddr().Addr(), Adapter: doctor.HostOnlyAdapter}}
	switch ts.kind {
	case targetSim:
		host, dom0, _ := vmctl.SimNames(spec.Lab)
		l.Kind = doctor.HostSim
		l.Sim = doctor.SimHostConfig{HostNS: host, Dom0NS: dom0, HostIf: vmctl.SimHostIf,
			Uplink: spec.Network.Uplink, HostAddr: spec.HostAddr(), Dom0Addr: spec.BridgeAddr().Addr(), Subnet: spec.Subnet()}
	case targetVagrant:
		l.Kind = doctor.HostVirtualBox
	case targetLocal:
		l.Kind = doctor.HostLocal
	}
	return l
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
