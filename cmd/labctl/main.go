// Command labctl provisions the MirageOS-on-Xen lab: dom0 networking,
// guests, and their checks. Logs go to stderr, data to stdout.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/labctl/labctl/netsetup"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
	exitDrift = 3 // status: the lab differs from its spec
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err == nil {
		os.Exit(exitOK)
	}
	if needsRoot(err) {
		// Said once, plainly, instead of the netlink or mount call that
		// happened to fail first.
		fmt.Fprintln(os.Stderr, "labctl: needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN): it creates links, network namespaces and iptables rules; run it with sudo ("+err.Error()+")")
		os.Exit(exitFail)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(os.Stderr, "labctl:", ee.err)
		}
		os.Exit(ee.code)
	}
	fmt.Fprintln(os.Stderr, "labctl:", err)
	os.Exit(exitFail)
}

// needsRoot reports whether err is a permission error of a labctl that
// is not root.
func needsRoot(err error) bool {
	return os.Geteuid() != 0 && (errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EACCES) ||
		strings.Contains(err.Error(), "operation not permitted"))
}

// app is what every command shares: global flags and the logger.
type app struct {
	specFile  string
	lab       string
	stateRoot string
	target    string
	jsonOut   bool
	verbose   bool
	log       *slog.Logger
	remote    remoteFlags // vagrant and ssh:// targets (remote.go)
	// fileReplicas is guests.replicas as the spec file says, before a
	// remembered deploy --replicas (desired.go) replaced it.
	fileReplicas int
}

func newRoot() *cobra.Command {
	a := &app{}
	root := &cobra.Command{
		Use:   "labctl",
		Short: "Provision the MirageOS-on-Xen lab: dom0 networking, guests and their checks",
		Long: `labctl turns the "Xen inside VirtualBox" MirageOS lab into code.

On any Linux machine, --target sim builds the same lab from network
namespaces (sudo labctl up --target sim). Logs go to stderr, data to
stdout; --json prints machine-readable results (schema 1, docs/json.md).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			level := slog.LevelInfo
			if a.verbose {
				level = slog.LevelDebug
			}
			a.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
			return a.checkGlobalFlags(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&a.specFile, "file", "f", "", "lab spec (YAML); default ./lab.yaml if present, else the built-in defaults")
	pf.StringVar(&a.lab, "lab", "", "lab name (default: the spec's)")
	pf.StringVar(&a.stateRoot, "state-dir", envOr("LABCTL_STATE_DIR", "/var/lib/labctl"), "root of the per-lab state directories ($LABCTL_STATE_DIR)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "debug logging")
	root.AddCommand(
		newInitCmd(a),
		newSimCmd(a),
		newProvisionCmd(a),
		newStatusCmd(a),
		newTeardownCmd(a),
		newAgentCmd(a),
		newUpCmd(a),
		newDownCmd(a),
		newGuestCmd(a),
		newUsersCmd(a),
		newDeployCmd(a),
		newDestroyCmd(a),
		newLogsCmd(a),
		newCheckCmd(a),
		newDoctorCmd(a),
		newTraceCmd(a),
		newShellCmd(a),
		newConsoleCmd(a),
		newCurlCmd(a),
		newGraphCmd(a),
		newBundleCmd(a),
	)
	return root
}

// checkGlobalFlags refuses an empty --lab or --state-dir (an unset shell
// variable must not select the default lab, issue 10 item 2) and makes
// --state-dir absolute once, here at the edge: a relative root would be
// journaled relative and mean another directory to a later run from
// elsewhere, and dnsmasq, which chdirs, could not open its files (item 3).
func (a *app) checkGlobalFlags(cmd *cobra.Command) error {
	if f := cmd.Flags().Lookup("lab"); f != nil && f.Changed && a.lab == "" {
		return &exitError{exitUsage, errors.New("--lab: empty; give a lab name or leave the flag out for the spec's")}
	}
	if a.stateRoot == "" {
		return &exitError{exitUsage, errors.New("--state-dir: empty; give a directory or leave the flag out for $LABCTL_STATE_DIR or /var/lib/labctl")}
	}
	abs, err := filepath.Abs(a.stateRoot)
	if err != nil {
		return &exitError{exitUsage, fmt.Errorf("--state-dir %q: %w", a.stateRoot, err)}
	}
	// The state directory's paths go into dnsmasq's config (item 4).
	if err := netsetup.CheckConfPath(abs); err != nil {
		return &exitError{exitUsage, fmt.Errorf("--state-dir: %w", err)}
	}
	a.stateRoot = abs
	return nil
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
