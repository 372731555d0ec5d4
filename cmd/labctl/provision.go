package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/labctl/labctl/provision"
	"github.com/spf13/cobra"
)

// addDetailedExitcode adds terraform's plan flag. Terraform's docs
// (https://developer.hashicorp.com/terraform/cli/commands/plan, "Other
// Options"): "-detailed-exitcode - Returns a detailed exit code when the
// command exits. When provided, this argument changes the exit codes and
// their meanings to provide more granular information about what the
// resulting plan contains: 0 = Succeeded with empty diff (no changes),
// 1 = Error, 2 = Succeeded with non-empty diff (changes present)". A CI
// job can then tell "drifted" from "broken" without parsing output.
func addDetailedExitcode(cmd *cobra.Command, detailed *bool) {
	cmd.Flags().BoolVar(detailed, "detailed-exitcode", false,
		"with --plan: exit 0 when nothing would change, 2 when something would, 1 on error (terraform's convention)")
}

// checkDetailedExitcode refuses --detailed-exitcode without --plan: an
// apply has no diff to report, and exit 2 would read as "changes".
func checkDetailedExitcode(detailed, plan bool) error {
	if detailed && !plan {
		return &exitError{exitUsage, errors.New("--detailed-exitcode: only with --plan")}
	}
	return nil
}

// planExit is exit 2 for a successful plan with changes when
// --detailed-exitcode asks for it; a plan that failed has already
// returned exit 1 from finish.
func planExit(detailed bool, r provision.Outcome) error {
	if !detailed {
		return nil
	}
	for _, s := range r.Head().Steps {
		if s.Status == provision.StatusPlanned {
			return &exitError{exitPlanChanges, nil}
		}
	}
	return nil
}

func newProvisionCmd(a *app) *cobra.Command {
	var plan, detailed bool
	cmd := &cobra.Command{
		Use:         "provision",
		Annotations: map[string]string{annExit: "2 changes (--plan --detailed-exitcode)"},
		Short:       "Converge dom0's lab network: bridge, uplink, address, promiscuous mode, forwarding, NAT, dnsmasq",
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
			if err := checkDetailedExitcode(detailed, plan); err != nil {
				return err
			}
			r, err := a.runOnDom0(cmd.Context(), cmd, "provision", plan)
			if err != nil {
				return err
			}
			if err := a.finish(cmd, r); err != nil {
				return err
			}
			return planExit(detailed, r)
		},
	}
	addTargetFlags(cmd, a)
	addJSONFlag(cmd, a)
	addOutputFlag(cmd, a)
	cmd.Flags().BoolVar(&plan, "plan", false, "list what would change; change nothing")
	addDetailedExitcode(cmd, &detailed)
	cmd.Flags().DurationVar(&a.remote.confirmTimeout, "confirm-timeout", 60*time.Second,
		"remote targets: unless this labctl reaches dom0 over a new connection within this time after provision starts, dom0 undoes the run (commit-confirm; 0 turns it off)")
	return cmd
}

func newStatusCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:         "status",
		Annotations: map[string]string{annExit: "3 drift or not provisioned"},
		Short:       "Show each item desired vs observed; exit 3 on drift",
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			r, err := onDom0[provision.GuestsResult](a, cmd.Context(), cmd, spec, "status", provision.AgentRequest{})
			if err != nil {
				return err
			}
			// host_probe, as deploy reports it: informational, the
			// exit code stays dom0's verdict.
			provision.ProbeFromHost(cmd.Context(), a.hostDial(spec), r.Guests, spec.Guests.Port)
			return a.finish(cmd, r)
		},
	}
	addTargetFlags(cmd, a)
	addJSONFlag(cmd, a)
	addOutputFlag(cmd, a)
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
	addJSONFlag(cmd, a)
	return cmd
}
