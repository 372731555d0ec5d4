package main

import (
	"fmt"
	"path/filepath"
	"strings"

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
			if err := (simOps{a}).simUp(cmd, spec); err != nil {
				return err
			}
			host, dom0, wan := vmctl.SimNames(spec.Lab)
			doc := simUpDoc{Schema: provision.SchemaVersion, Command: "sim up", Lab: spec.Lab, Target: targetSim, OK: true,
				Sim:    provision.SimInfo{HostNetns: host, Dom0Netns: dom0, WANNetns: wan},
				HostIf: vmctl.SimHostIf, HostAddress: spec.Network.HostAddress.String(), Uplink: spec.Network.Uplink, Dom0Address: spec.Network.Address.String()}
			if !a.jsonOut {
				fmt.Fprintf(cmd.OutOrStdout(), "simulated lab %s: host %s (%s %s), dom0 %s (%s %s), wan %s\n",
					spec.Lab, host, vmctl.SimHostIf, spec.Network.HostAddress, dom0, spec.Network.Uplink, spec.Network.Address, wan)
			}
			if sshd {
				d, err := simOps{a}.simSSHD(cmd, spec)
				if err != nil {
					return err
				}
				doc.SSHD = &d
			}
			if a.jsonOut {
				return writeJSON(cmd.OutOrStdout(), doc)
			}
			return nil
		},
	}
	addJSONFlag(up, a)
	up.Flags().BoolVar(&sshd, "sshd", false, "also run OpenSSH's sshd in <lab>-dom0 on dom0's address, with keys in <state-dir>/<lab>/ssh/ (the target for --target ssh://)")
	cmd.AddCommand(up)
	down := &cobra.Command{
		Use:   "down",
		Short: "Remove every namespace, link and process of the simulated lab (stands in for vagrant destroy); idempotent",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			return simOps{a}.simDown(cmd, spec, "sim down", true)
		},
	}
	addJSONFlag(down, a)
	cmd.AddCommand(down)
	return cmd
}

func (a simOps) simUp(cmd *cobra.Command, spec provision.Spec) error {
	c := vmctl.SimConfig{Lab: spec.Lab, Uplink: spec.Network.Uplink, HostAddr: spec.HostAddr(), Dom0Addr: spec.BridgeAddr()}
	if err := vmctl.SimUp(cmd.Context(), c, a.log); err != nil {
		return &exitError{exitFail, fmt.Errorf("sim up: %w", err)}
	}
	return nil
}

// simDown destroys the lab's namespaces. The journal described a dom0
// that no longer exists, so the lab's state goes with it; with keepUsers
// the users directory (the user's data) stays.
func (a simOps) simDown(cmd *cobra.Command, spec provision.Spec, command string, keepUsers bool) error {
	if err := vmctl.SimDown(cmd.Context(), spec.Lab, a.log); err != nil {
		return &exitError{exitFail, fmt.Errorf("sim down: %w", err)}
	}
	// down takes the lab's users with it: say whom (issue 12), so that
	// nobody learns it at the next deploy. sim down keeps them.
	var gone []string
	if !keepUsers {
		if d, err := provision.UsersDir(a.stateRoot, spec, false); err == nil {
			gone, _ = d.List()
		}
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
	if len(gone) > 0 {
		a.log.Warn("the lab's users went with it (labctl sim down keeps them)", "users", strings.Join(gone, ","))
	}
	if a.jsonOut {
		if left == nil {
			left = []string{}
		}
		if gone == nil {
			gone = []string{}
		}
		return writeJSON(cmd.OutOrStdout(), downDoc{Schema: provision.SchemaVersion, Command: command, Lab: spec.Lab,
			Target: targetSim, OK: true, KeptUsers: keepUsers, RemovedUsers: gone, Left: left})
	}
	fmt.Fprintf(cmd.OutOrStdout(), "simulated lab %s: removed\n", spec.Lab)
	return nil
}

// simSSHD starts the simulated dom0's sshd and prints how to use it
// (without --json; with it the caller puts what it returns in sim up's
// document).
func (a simOps) simSSHD(cmd *cobra.Command, spec provision.Spec) (sshdDoc, error) {
	s := a.simSSHDFor(spec)
	// The lab directory first, 0711 like provision makes it: MkdirAll
	// of ssh/ alone would leave its parents 0700, closed to dnsmasq.
	if _, err := provision.EnsureStateDir(a.stateRoot, spec.Lab); err != nil {
		return sshdDoc{}, &exitError{exitFail, fmt.Errorf("sim up --sshd: %w", err)}
	}
	pid, err := s.Up(cmd.Context())
	if err != nil {
		return sshdDoc{}, &exitError{exitFail, fmt.Errorf("sim up --sshd: %w", err)}
	}
	d := sshdDoc{Target: s.Target(), PID: pid, Netns: s.Netns, Identity: s.IdentityPath(), KnownHosts: s.KnownHostsPath()}
	if a.jsonOut {
		return d, nil
	}
	host, _, _ := vmctl.SimNames(spec.Lab)
	w := cmd.OutOrStdout()
	fmt.Fprintf(w, "dom0 sshd: %s (pid %d, in %s)\n  identity:    %s\n  known_hosts: %s\n", s.Target(), pid, s.Netns, s.IdentityPath(), s.KnownHostsPath())
	fmt.Fprintf(w, "  try: sudo ip netns exec %s %s --target %s --identity %s --known-hosts %s\n",
		host, a.hint(cmd, spec.Lab, "provision"), s.Target(), sshx.QuoteWord(s.IdentityPath()), sshx.QuoteWord(s.KnownHostsPath()))
	return d, nil
}

// simSSHDFor is the lab's simulated sshd: on dom0's lab address, its
// files under the lab's state directory.
func (a simOps) simSSHDFor(spec provision.Spec) vmctl.SimSSHD {
	_, dom0, _ := vmctl.SimNames(spec.Lab)
	return vmctl.SimSSHD{Netns: dom0, Addr: spec.BridgeAddr().Addr(),
		Dir: filepath.Join(provision.StateDir(a.stateRoot, spec.Lab), "ssh"), Log: a.log}
}
