package main

import (
	"fmt"
	"log/slog"
	"os"

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
	var state string
	run := &cobra.Command{
		Use:   "run",
		Short: "Boot the reference guest: users image, DHCP on the interface, auth service on the port",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if cfg.ImagePath == "" {
				return &exitError{exitUsage, fmt.Errorf("--image: the users image is required")}
			}
			// The console (stdout) gets the boot trace; structured logs
			// (user names and outcomes, never passwords) go to stderr.
			log := slog.New(slog.NewTextHandler(os.Stderr, nil)).With("guest", cfg.Hostname)
			if err := guest.Run(cmd.Context(), cfg, log, os.Stdout); err != nil {
				return &exitError{exitFail, err}
			}
			return nil
		},
	}
	f := run.Flags()
	f.StringVar(&cfg.ImagePath, "image", "", "users image (the stand-in for the xvdb block device)")
	f.StringVar(&cfg.Interface, "iface", "eth0", "interface to configure by DHCP")
	f.IntVar(&cfg.Port, "port", 8088, "TCP port of the auth service")
	f.StringVar(&cfg.Hostname, "hostname", "", "host name sent in DHCP")
	f.StringVar(&state, "state", "", "the guest's state directory (identifies the process)")
	cmd.AddCommand(run)
	return cmd
}
