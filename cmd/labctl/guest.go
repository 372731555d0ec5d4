package main

import (
	"fmt"

	"github.com/labctl/labctl/service/guest"
	"github.com/spf13/cobra"
)

// `labctl guest run` is the reference guest: what the process runtime
// starts inside each sim guest's namespace, standing in for the unikernel.
func newGuestCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:    "guest",
		Short:  "The reference guest (run by the process runtime inside a guest namespace)",
		Hidden: true,
	}
	var cfg guest.Config
	var state, consolePath, config string
	var consoleMax int64
	run := &cobra.Command{
		Use:   "run",
		Short: "Boot the reference guest: users image, DHCP on the interface, auth service on the port",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if config != "" {
				// The runtime's contract: one typed value in a file.
				b, err := guest.ReadBootFile(config)
				if err != nil {
					return &exitError{exitUsage, err}
				}
				if err := guest.RunBoot(cmd.Context(), b); err != nil {
					return &exitError{exitFail, err}
				}
				return nil
			}
			if cfg.ImagePath == "" {
				return &exitError{exitUsage, fmt.Errorf("--image: the users image is required")}
			}
			// The console gets the boot trace and the structured logs
			// (user names and outcomes, never passwords): --console, a
			// file capped in size (a line per request would grow without
			// bound), else stdout and stderr.
			b := guest.Boot{Config: cfg, ConsolePath: consolePath, ConsoleMax: consoleMax}
			if err := guest.RunBoot(cmd.Context(), b); err != nil {
				return &exitError{exitFail, err}
			}
			return nil
		},
	}
	f := run.Flags()
	f.StringVar(&config, "config", "", "a guest.Boot JSON file (what the process runtime writes); replaces the other flags")
	f.StringVar(&cfg.ImagePath, "image", "", "users image (the stand-in for the xvdb block device)")
	f.StringVar(&cfg.Interface, "iface", "eth0", "interface to configure by DHCP")
	f.IntVar(&cfg.Port, "port", 8088, "TCP port of the auth service")
	f.StringVar(&cfg.Hostname, "hostname", "", "host name sent in DHCP")
	f.StringVar(&state, "state", "", "the guest's state directory (identifies the process)")
	f.StringVar(&consolePath, "console", "", "write the console and logs to this file, rotated to FILE.1 at --console-max bytes")
	f.Int64Var(&consoleMax, "console-max", guest.DefaultConsoleMax, "size at which --console rotates")
	cmd.AddCommand(run)
	return cmd
}
