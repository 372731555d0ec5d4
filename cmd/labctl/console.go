package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/labctl/labctl/attach"
	"github.com/labctl/labctl/provision"
	"github.com/spf13/cobra"
)

func newConsoleCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "console GUEST",
		Short: "Attach to a guest's console: the process runtime's console log as it grows (Ctrl-C detaches); xen: xl console",
		Long: `console shows what the guest prints from now on. For the process
runtime (the sim) it follows the console log, read-only, until Ctrl-C or
SIGTERM; labctl logs GUEST prints what came before. For the xen runtime on
--target local (labctl on dom0) it runs xl console GUEST (Ctrl-] detaches).`,
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
				return &exitError{exitUsage, fmt.Errorf("console: --target %s is not supported yet; use labctl shell dom0 --target %s, then labctl console %s there", a.target, a.target, args[0])}
			}
			dir := filepath.Join(provision.StateDir(a.stateRoot, spec.Lab), "guests", args[0])
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
			switch runtime {
			case "":
				return &exitError{exitFail, fmt.Errorf("no guest %s deployed in lab %s", args[0], spec.Lab)}
			case "xen":
				xl := spec.Xen.XL
				c := exec.Command(xl, "console", args[0])
				c.Stdin, c.Stdout, c.Stderr = os.Stdin, cmd.OutOrStdout(), cmd.ErrOrStderr()
				if err := c.Run(); err != nil {
					return &exitError{exitFail, fmt.Errorf("%s console %s: %w", xl, args[0], err)}
				}
				return nil
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "console of %s (%s runtime, read-only): following %s; Ctrl-C detaches\n",
				args[0], runtime, filepath.Join(dir, "console.log"))
			return attach.Follow(cmd.Context(), filepath.Join(dir, "console.log"), cmd.OutOrStdout(), true, 100*time.Millisecond)
		},
	}
	addTargetFlags(cmd, a)
	return cmd
}
