package main

import (
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
			r, err := a.runOnDom0(cmd.Context(), cmd, "provision", plan)
			if err != nil {
				return err
			}
			return a.finish(cmd, r)
		},
	}
	addTargetFlags(cmd, a)
	cmd.Flags().BoolVar(&plan, "plan", false, "list what would change; change nothing")
	return cmd
}

func newStatusCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show each item desired vs observed; exit 3 on drift",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := a.runOnDom0(cmd.Context(), cmd, "status", false)
			if err != nil {
				return err
			}
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
