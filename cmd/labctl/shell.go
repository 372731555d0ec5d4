package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/labctl/labctl/attach"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/vmctl"
	"github.com/labctl/labctl/vmctl/sshx"
	"github.com/spf13/cobra"
)

func newShellCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "shell dom0|host",
		Short: "A shell on dom0 or the host side: in the sim, $SHELL (or /bin/sh) inside <lab>-dom0 or <lab>-host, its prompt marked [labctl <ns>]",
		Long: `shell starts your $SHELL (or /bin/sh) inside the simulated lab's
namespace: dom0 (<lab>-dom0: eth1, br0, dnsmasq, iptables) or host
(<lab>-host: vboxnet4). The prompt starts with "[labctl <ns>]" and
LABCTL_NETNS names the namespace. Commands can be piped on stdin:
  echo 'ip -br addr' | sudo labctl shell dom0 --target sim
The shell's exit code is labctl's. For --target vagrant or ssh://, dom0's
shell is an SSH session over the connection labctl verifies (its host key
against known_hosts); the host is then this machine.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			which := args[0]
			if which != "dom0" && which != "host" {
				return &exitError{exitUsage, fmt.Errorf("shell %q: expected dom0 or host", which)}
			}
			ts, err := parseTarget(a.target)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			var code int
			switch {
			case ts.kind == targetSim:
				host, dom0, _ := vmctl.SimNames(spec.Lab)
				ns := map[string]string{"host": host, "dom0": dom0}[which]
				if _, err := os.Stat("/run/netns/" + ns); err != nil {
					return a.notUp(cmd, spec.Lab, " (no "+ns+")")
				}
				code, err = attach.Shell(cmd.Context(), attach.ShellOptions{Netns: ns, Label: ns, Shell: os.Getenv("SHELL"),
					Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(), Env: os.Environ()})
			case which == "host":
				return &exitError{exitUsage, fmt.Errorf("shell host: with --target %s the host is this machine", a.target)}
			case ts.kind == targetLocal:
				return &exitError{exitUsage, errors.New("shell dom0: with --target local this machine is dom0")}
			default:
				code, err = remoteOps{a}.remoteShell(cmd, spec, ts)
			}
			if err != nil {
				return &exitError{exitFail, err}
			}
			if code != 0 {
				return &exitError{code, errors.New("")}
			}
			return nil
		},
	}
	addTargetFlags(cmd, a)
	return cmd
}

// remoteShell is dom0's shell over the target's SSH connection, the host
// key verified as for every remote command.
func (a remoteOps) remoteShell(cmd *cobra.Command, spec provision.Spec, ts targetSpec) (int, error) {
	cfg, err := a.sshConfig(cmd.Context(), spec, ts)
	if err != nil {
		return 0, err
	}
	tr, err := sshx.New(cfg)
	if err != nil {
		return 0, err
	}
	defer tr.Close()
	return tr.Shell(cmd.Context(), cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
}
