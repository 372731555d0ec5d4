package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strings"
	"time"

	"github.com/labctl/labctl/attach"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/statedir"
	"github.com/labctl/labctl/vmctl/sshx"
	"github.com/spf13/cobra"
)

func newConsoleCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:         "console GUEST",
		Annotations: map[string]string{annExit: "0 when stopped by a signal"},
		Short:       "Attach to a guest's console: the process runtime's console log as it grows (Ctrl-C detaches); xen: xl console",
		Long: `console shows what the guest prints from now on. For the process
runtime (the sim) it follows the console log, read-only, until Ctrl-C or
SIGTERM; labctl logs GUEST prints what came before. For the xen runtime it
runs xl console GUEST (Ctrl-] detaches). With --target vagrant or ssh://
both happen on dom0 over the verified SSH connection (xl console in a pty).`,
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
			if ts.remote() {
				return remoteOps{a}.remoteConsole(cmd, spec, ts, args[0])
			}
			log := statedir.Layout{Root: a.stateRoot, Lab: spec.Lab}.GuestFile(args[0], statedir.ConsoleLog)
			g, err := provision.ReadGuests(provision.StateDir(a.stateRoot, spec.Lab))
			if err != nil {
				return &exitError{exitFail, err}
			}
			runtime := ""
			for _, r := range g {
				if r.Name == args[0] {
					runtime = r.Runtime
				}
			}
			if runtime == "" {
				return &exitError{exitFail, fmt.Errorf("no guest %s deployed in lab %s", args[0], spec.Lab)}
			}
			if argv := provision.ConsoleCommand(spec, runtime, args[0]); argv != nil {
				c := exec.Command(argv[0], argv[1:]...)
				c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
				if err := c.Run(); err != nil {
					return &exitError{exitFail, fmt.Errorf("%s: %w", strings.Join(argv, " "), err)}
				}
				return nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "console of %s (%s runtime, read-only): following %s; Ctrl-C detaches\n",
				args[0], runtime, log)
			return attach.Follow(cmd.Context(), log, cmd.OutOrStdout(), true, 100*time.Millisecond)
		},
	}
	addTargetFlags(cmd, a)
	return cmd
}

// remoteConsole attaches to a guest on a remote dom0: its record says the
// runtime; the process runtime's log is followed with tail -F, xen's
// console is xl console in a pty.
func (a remoteOps) remoteConsole(cmd *cobra.Command, spec provision.Spec, ts targetSpec, name string) error {
	if err := checkRemotePath(a.remote.dom0State); err != nil {
		return &exitError{exitUsage, fmt.Errorf("--dom0-state-dir: %w", err)}
	}
	cfg, err := a.sshConfig(cmd.Context(), spec, ts)
	if err != nil {
		return err
	}
	tr, err := sshx.New(cfg)
	if err != nil {
		return &exitError{exitUsage, err}
	}
	defer tr.Close()
	dir := statedir.Layout{Root: a.remote.dom0State, Lab: spec.Lab}.Guest(name)
	var rec bytes.Buffer
	if err := tr.Run(cmd.Context(), []string{"cat", path.Join(dir, statedir.GuestRecord)}, nil, &rec, io.Discard); err != nil {
		return &exitError{exitFail, fmt.Errorf("no guest %s deployed in lab %s on dom0: %w", name, spec.Lab, err)}
	}
	var g provision.GuestRecord
	if err := json.Unmarshal(rec.Bytes(), &g); err != nil {
		return &exitError{exitFail, fmt.Errorf("guest %s: record on dom0: %w", name, err)}
	}
	if argv := provision.ConsoleCommand(spec, g.Runtime, name); argv != nil {
		code, err := tr.Interactive(cmd.Context(), argv, cmd.InOrStdin(), cmd.OutOrStdout(), cmd.ErrOrStderr())
		if err != nil {
			return &exitError{exitFail, err}
		}
		if code != 0 {
			return &exitError{code, fmt.Errorf("%s exited %d", strings.Join(argv, " "), code)}
		}
		return nil
	}
	log := path.Join(dir, statedir.ConsoleLog)
	fmt.Fprintf(cmd.ErrOrStderr(), "console of %s (%s runtime, read-only): following %s on dom0; Ctrl-C detaches\n", name, g.Runtime, log)
	err = tr.Run(cmd.Context(), []string{"tail", "-n", "0", "-F", log}, nil, cmd.OutOrStdout(), cmd.ErrOrStderr())
	if cmd.Context().Err() != nil {
		return nil // detached
	}
	if err != nil {
		return &exitError{exitFail, err}
	}
	return nil
}
