package main

import (
	"fmt"
	"path/filepath"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/vmctl"
	"github.com/labctl/labctl/vmctl/sshx"
	"github.com/spf13/cobra"
)

func newSimCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sim",
		Short: "The simulated lab: network namespaces standing in for the host, the dom0 VM and its NAT",
	}
	var sshd bool
	up := &cobra.Command{
		Use:   "up",
		Short: "Create <lab>-host, <lab>-dom0 and <lab>-wan (stands in for vagrant up); idempotent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			if err := a.simUp(cmd, spec); err != nil {
				return err
			}
			host, dom0, wan := vmctl.SimNames(spec.Lab)
			fmt.Fprintf(cmd.OutOrStdout(), "simulated lab %s: host %s (%s %s), dom0 %s (%s %s), wan %s\n",
				spec.Lab, host, vmctl.SimHostIf, spec.Network.HostAddress, dom0, spec.Network.Uplink, spec.Network.Address, wan)
			if sshd {
				return a.simSSHD(cmd, spec)
			}
			return nil
		},
	}
	up.Flags().BoolVar(&sshd, "sshd", false, "also run OpenSSH's sshd in <lab>-dom0 on dom0's address, with keys in <state-dir>/<lab>/ssh/ (the target for --target ssh://)")
	cmd.AddCommand(up)
	cmd.AddCommand(&cobra.Command{
		Use:   "down",
		Short: "Remove every namespace, link and process of the simulated lab (stands in for vagrant destroy); idempotent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			return a.simDown(cmd, spec, true)
		},
	})
	return cmd
}

func (a *app) simUp(cmd *cobra.Command, spec provision.Spec) error {
	c := vmctl.SimConfig{Lab: spec.Lab, Uplink: spec.Network.Uplink, HostAddr: spec.HostAddr(), Dom0Addr: spec.BridgeAddr()}
	if err := vmctl.SimUp(cmd.Context(), c, a.log); err != nil {
		return &exitError{exitFail, fmt.Errorf("sim up: %w", err)}
	}
	return nil
}

// simDown destroys the lab's namespaces. The journal described a dom0
// that no longer exists, so the lab's state goes with it; with keepUsers
// the users directory (the user's data) stays.
func (a *app) simDown(cmd *cobra.Command, spec provision.Spec, keepUsers bool) error {
	if err := vmctl.SimDown(cmd.Context(), spec.Lab, a.log); err != nil {
		return &exitError{exitFail, fmt.Errorf("sim down: %w", err)}
	}
	// Only what labctl made goes (issue 10 item 1): anything else in the
	// directory is the user's, left where it is and named.
	left, err := provision.RemoveState(a.stateRoot, spec.Lab, func(name string) bool { return keepUsers && name == "users" })
	if err != nil {
		return &exitError{exitFail, fmt.Errorf("sim down: removing state: %w", err)}
	}
	for _, p := range left {
		a.log.Warn("left in the state directory: not labctl's", "path", p)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "simulated lab %s: removed\n", spec.Lab)
	return nil
}

// simSSHD starts the simulated dom0's sshd and prints how to use it.
func (a *app) simSSHD(cmd *cobra.Command, spec provision.Spec) error {
	s := a.simSSHDFor(spec)
	// The lab directory first, 0711 like provision makes it: MkdirAll
	// of ssh/ alone would leave its parents 0700, closed to dnsmasq.
	if _, err := provision.EnsureStateDir(a.stateRoot, spec.Lab); err != nil {
		return &exitError{exitFail, fmt.Errorf("sim up --sshd: %w", err)}
	}
	pid, err := s.Up(cmd.Context())
	if err != nil {
		return &exitError{exitFail, fmt.Errorf("sim up --sshd: %w", err)}
	}
	host, _, _ := vmctl.SimNames(spec.Lab)
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "dom0 sshd: %s (pid %d, in %s)\n  identity:    %s\n  known_hosts: %s\n", s.Target(), pid, s.Netns, s.IdentityPath(), s.KnownHostsPath())
	fmt.Fprintf(w, "  try: sudo ip netns exec %s %s --target %s --identity %s --known-hosts %s\n",
		host, a.hint(cmd, spec.Lab, "provision"), s.Target(), sshx.QuoteWord(s.IdentityPath()), sshx.QuoteWord(s.KnownHostsPath()))
	return nil
}

// simSSHDFor is the lab's simulated sshd: on dom0's lab address, its
// files under the lab's state directory.
func (a *app) simSSHDFor(spec provision.Spec) vmctl.SimSSHD {
	_, dom0, _ := vmctl.SimNames(spec.Lab)
	return vmctl.SimSSHD{Netns: dom0, Addr: spec.BridgeAddr().Addr(),
		Dir: filepath.Join(provision.StateDir(a.stateRoot, spec.Lab), "ssh"), Log: a.log}
}
