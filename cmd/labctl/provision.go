package main

import (
	"fmt"
	"time"

	"github.com/labctl/labctl/provision"
	"github.com/spf13/cobra"
)

func newProvisionCmd(a *app) *cobra.Command {
	var plan bool
	cmd := &cobra.Command{
		Use:   "provision",
		Short: "Converge dom0's lab network: bridge, uplink, address, promiscuous mode, forwarding, NAT, dnsmasq",
		Long: `provision converges dom0 step by step; each step observes, diffs, applies
and verifies. A second run changes nothing. --plan only lists what would
change. Every change is journaled first, so teardown restores exactly what
was there.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if t := a.remote.confirmTimeout; t < 0 || (t > 0 && t < 2*time.Second) || t > time.Hour {
				return &exitError{exitUsage, fmt.Errorf("--confirm-timeout %v: expected 0 (off) or 2s to 1h", t)}
			}
			if plan {
				a.remote.confirmTimeout = 0 // a plan changes nothing
			}
			r, err := a.runOnDom0(cmd.Context(), cmd, "provision", plan)
			if err != nil {
				return err
			}
			return a.finish(cmd, r)
		},
	}
	addTargetFlags(cmd, a)
	cmd.Flags().BoolVar(&plan, "plan", false, "list what would change; change nothing")
	cmd.Flags().DurationVar(&a.remote.confirmTimeout, "confirm-timeout", 60*time.Second,
		"remote targets: unless this labctl reaches dom0 over a new connection within this time after provision starts, dom0 undoes the run (commit-confirm; 0 turns it off)")
	return cmd
}

func newStatusCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each item desired vs observed; exit 3 on drift",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			r, err := a.runOnDom0With(cmd.Context(), cmd, spec, "status", provision.AgentRequest{})
			if err != nil {
				return err
			}
			// host_probe, as deploy reports it: informational, the
			// exit code stays dom0's verdict.
			a.probeFromHost(cmd.Context(), spec, &r)
			return a.finish(cmd, r)
		},
	}
	addTargetFlags(cmd, a)
	return cmd
}

func newTeardownCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "teardown",
		Short: "Undo everything provision changed, in reverse order, from the journal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.runOnDom0(cmd.Context(), cmd, "teardown", false)
			if err != nil {
				return err
			}
			return a.finish(cmd, r)
		},
	}
	addTargetFlags(cmd, a)
	return cmd
}
