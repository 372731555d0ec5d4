package main

import (
	"fmt"

	"github.com/labctl/labctl/vmctl"
	"github.com/spf13/cobra"
)

// up and down are the whole lab in one command: for the sim, the VM
// (namespaces), then dom0's network.
func newUpCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Bring the whole lab up: the simulated VM, then provision",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.target != targetSim {
				return &exitError{exitUsage, fmt.Errorf("--target %q: up builds the simulated lab; use --target sim (on a real dom0: vagrant up, then labctl provision)", a.target)}
			}
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			if err := a.simUp(cmd, spec); err != nil {
				return err
			}
			r, err := a.runOnDom0(cmd.Context(), cmd, "provision", false)
			if err != nil {
				return err
			}
			if err := a.finish(cmd, r); err != nil {
				return err
			}
			host, dom0, _ := vmctl.SimNames(spec.Lab)
			fmt.Fprintf(cmd.OutOrStdout(), "\nlab %s is up. Try: sudo ip netns exec %s ping -c1 %s   (host → dom0's br0)\n",
				spec.Lab, host, spec.BridgeAddr().Addr())
			fmt.Fprintf(cmd.OutOrStdout(), "dom0 shell: sudo ip netns exec %s bash\n", dom0)
			return nil
		},
	}
	addTargetFlags(cmd, a)
	return cmd
}

func newDownCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "down",
		Short: "Remove the whole simulated lab: processes, namespaces and state",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.target != targetSim {
				return &exitError{exitUsage, fmt.Errorf("--target %q: down removes the simulated lab; use --target sim (on a real dom0: labctl teardown)", a.target)}
			}
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			return a.simDown(cmd, spec, false)
		},
	}
	addTargetFlags(cmd, a)
	return cmd
}
