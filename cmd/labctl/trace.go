package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/trace"
	"github.com/labctl/labctl/vmctl"
	"github.com/labctl/labctl/vmctl/sshx"
	"github.com/spf13/cobra"
)

// traceReport is `labctl trace --json`.
type traceReport struct {
	Schema  int    `json:"schema"`
	Command string `json:"command"`
	Lab     string `json:"lab"`
	trace.Result
}

func newTraceCmd(a *app) *cobra.Command {
	var from string
	cmd := &cobra.Command{
		Use:   "trace GUEST",
		Short: "Walk a probe's path to a guest hop by hop and name the first hop that fails, with doctor's fix",
		Long: `trace sends one probe to the guest's service (from the host, or from dom0
with --from dom0) and one from the guest's side out through dom0's NAT, then
reads every hop: the host's route and ARP entry, the host-only link (sim: the
veth vboxnet4 ═ eth1), eth1's PROMISC flag, br0 and the guest's port and FDB
entry, the guest's lease and dom0's ARP entry, FORWARD/NAT counters, the TCP
connect and the HTTP answer. It names the first hop that fails and its fix
(doctor's, when doctor has a finding for it). It changes nothing; it exits 1
when a hop fails. Hops and faults: docs/trace.md.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			if err := validGuestName(args[0]); err != nil {
				return &exitError{exitUsage, err}
			}
			ts, err := parseTarget(a.target)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			if ts.kind != targetSim {
				// The dom0 half (trace.ObserveDom0's data) is designed to
				// travel as agent JSON, but the agent has no trace verb yet.
				return &exitError{exitUsage, fmt.Errorf("trace: --target %s is not supported yet (only sim); use %s", a.target, a.hint(cmd, spec.Lab, "doctor"))}
			}
			stateDir := provision.StateDir(a.stateRoot, spec.Lab)
			g, err := trace.FindGuest(stateDir, args[0])
			if err != nil {
				return &exitError{exitFail, err}
			}
			c, err := trace.ConfigFor(spec, g, from)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			complete := diagnosis{a}.fixCompleter(cmd, spec)
			// This invocation's --target, --lab, … as doctor's fixes get them.
			flags := strings.TrimPrefix(complete(provision.FixDeploy), provision.FixDeploy)
			c.Reboot = "labctl destroy " + sshx.QuoteWord(g.Name) + flags + " && " + provision.FixDeploy + flags
			env, closeEnv, err := trace.SimEnv(spec, stateDir, g, c)
			if err != nil {
				return &exitError{exitFail, fmt.Errorf("%w: run %s", err, a.hint(cmd, spec.Lab, "up"))}
			}
			obs := trace.Observe(cmd.Context(), env)
			closeEnv()
			r := trace.Judge(c, obs, nil, nil)
			if r.Verdict != "" {
				// Only a broken path pays for doctor's checks.
				fs := diagnosis{a}.doctor(cmd.Context(), cmd, spec, ts, "")
				host, _, _ := vmctl.SimNames(spec.Lab)
				r = trace.Judge(c, obs, fs, map[string]string{
					trace.HopHostARP:    "sudo ip netns exec " + host + " ip neigh flush to " + g.IP.String(),
					trace.HopBridgePort: complete(provision.FixDeploy),
					trace.HopLease:      complete(provision.FixDeploy),
					trace.HopDom0ARP:    complete(provision.FixDeploy),
					trace.HopForward:    complete(provision.FixProvision),
					trace.HopTCP:        complete(provision.FixDeploy),
					trace.HopHTTP:       complete(provision.FixDeploy),
					trace.HopPromisc:    complete(provision.FixProvision),
				})
			}
			return diagnosis{a}.printTrace(cmd.OutOrStdout(), spec, r)
		},
	}
	addTargetFlags(cmd, a)
	addJSONFlag(cmd, a)
	cmd.Flags().StringVar(&from, "from", "host", "where the probe starts: host or dom0")
	return cmd
}

func (a diagnosis) printTrace(w io.Writer, spec provision.Spec, r trace.Result) error {
	if a.jsonOut {
		if err := writeJSON(w, traceReport{Schema: provision.SchemaVersion, Command: "trace", Lab: spec.Lab, Result: r}); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "HOP\tSTATUS\tDETAIL")
		for _, h := range r.Hops {
			mark := h.Status
			if h.ID == r.Verdict {
				mark += " <-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", h.ID, mark, h.Detail)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		if r.Verdict == "" {
			fmt.Fprintf(w, "\n%s: the path from the %s is clean\n", r.Guest, r.From)
		} else {
			for _, h := range r.Hops {
				if h.ID != r.Verdict {
					continue
				}
				fmt.Fprintf(w, "\n%s: first failing hop: %s (%s)\n  %s\n", r.Guest, h.ID, h.Status, h.Detail)
				if h.Meaning != "" {
					fmt.Fprintf(w, "  meaning: %s\n", h.Meaning)
				}
				if h.Fix != "" {
					from := ""
					if h.Doctor != "" {
						from = "  (doctor: " + h.Doctor + ")"
					}
					fmt.Fprintf(w, "  fix:     %s%s\n", h.Fix, from)
				}
			}
		}
	}
	if !r.OK {
		return &exitError{exitFail, fmt.Errorf("trace %s: hop %s fails", r.Guest, r.Verdict)}
	}
	return nil
}
