// Command labctl provisions the MirageOS-on-Xen lab: dom0 networking,
// guests, and their checks. Logs go to stderr, data to stdout.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/labctl/labctl/provision"
	"github.com/spf13/cobra"
)

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
	exitDrift = 3 // status: the lab differs from its spec
	// exitPlanChanges: --plan --detailed-exitcode found changes to make.
	// Terraform's convention, see addDetailedExitcode.
	exitPlanChanges = 2
)

// exitError carries an exit code through cobra.
type exitError struct {
	code int
	err  error
}

// Error is "" for an exit code with nothing to say (the output said it).
func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}
func (e *exitError) Unwrap() error { return e.err }

func main() {
	// A signal cancels the context with itself as the cause, so the exit
	// code can say which one (128+n, the shell's convention) instead of
	// "context canceled" and 1.
	ctx, cancel := context.WithCancelCause(context.Background())
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, os.Interrupt, syscall.SIGTERM)
	go func() {
		if s, ok := <-sigc; ok {
			cancel(signalError{s.(syscall.Signal)})
		}
	}()
	err := newRoot().ExecuteContext(ctx)
	signal.Stop(sigc)
	os.Exit(exitCode(err, context.Cause(ctx), os.Stderr))
}

// signalError is the cause of a context cancelled by a signal.
type signalError struct{ sig syscall.Signal }

func (e signalError) Error() string {
	switch e.sig {
	case syscall.SIGINT:
		return "interrupted (SIGINT)"
	case syscall.SIGTERM:
		return "terminated (SIGTERM)"
	}
	return "stopped by " + e.sig.String()
}

// exitCode prints err, if any, and maps it to the process's exit code:
// the exitError's code, else 1; but 128+n when signal n stopped the
// command (130 for Ctrl-C, 143 for SIGTERM, what a shell reports for a
// process the signal killed). A command that ends at a signal by design
// and returns no error (logs --follow, console) exits 0: the signal is
// how it is meant to be stopped, not an interruption.
func exitCode(err, cause error, stderr io.Writer) int {
	if err == nil {
		return exitOK
	}
	var se signalError
	if errors.As(cause, &se) {
		// The command's own error is most often the cancellation itself,
		// which says nothing the signal does not.
		if !errors.Is(err, context.Canceled) && err.Error() != "" {
			fmt.Fprintln(stderr, "labctl:", err)
		}
		fmt.Fprintln(stderr, "labctl:", se)
		return 128 + int(se.sig)
	}
	if needsRoot(err) {
		// Said once, plainly, instead of the netlink or mount call that
		// happened to fail first.
		fmt.Fprintln(stderr, "labctl: needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN): it creates links, network namespaces and iptables rules; run it with sudo ("+err.Error()+")")
		return exitFail
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil && ee.err.Error() != "" {
			fmt.Fprintln(stderr, "labctl:", ee.err)
		}
		return ee.code
	}
	fmt.Fprintln(stderr, "labctl:", err)
	return exitFail
}

// usageErrors makes every way cobra refuses a command line exit 2 (bad
// input, as the README says) rather than 1: bad or unknown flags (the
// flag error func is inherited by every subcommand), wrong argument
// counts (each Args validator, wrapped), and unknown verbs, which cobra
// reports as a plain error for the root and as help with exit 0 for a
// group such as "users": each group gets a validator and a Run of its
// own, so the verb is checked here.
func usageErrors(root *cobra.Command) {
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{exitUsage, fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		switch {
		case c.HasSubCommands() && !c.Runnable():
			c.Args = unknownVerb
			c.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
		case c.Args != nil:
			args := c.Args
			c.Args = func(cmd *cobra.Command, a []string) error {
				if err := args(cmd, a); err != nil {
					return &exitError{exitUsage, fmt.Errorf("%s: %w (see %s --help)", cmd.CommandPath(), err, cmd.CommandPath())}
				}
				return nil
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// unknownVerb refuses any argument to a command that only groups verbs,
// with cobra's did-you-mean suggestions.
func unknownVerb(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra's own default, set only on its path
	}
	msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
	if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
		msg += "; did you mean " + strings.Join(s, " or ") + "?"
	}
	return &exitError{exitUsage, fmt.Errorf("%s (see %s --help)", msg, cmd.CommandPath())}
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
	output    outputMode // -o of provision, status, deploy, up (output.go)
	verbose   bool
	log       *slog.Logger
	remote    remoteFlags // vagrant and ssh:// targets (remote.go)
	// cmd is the command running, for hints made where it is not at
	// hand (openDom0).
	cmd *cobra.Command
	// fileReplicas is guests.replicas as the spec file says, before a
	// remembered deploy --replicas (desired.go) replaced it.
	fileReplicas int
}

func newRoot() *cobra.Command { return newRootFor(&app{}) }

// newRootFor is the command tree sharing a, which tests inspect.
func newRootFor(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "labctl",
		Short: "Provision the MirageOS-on-Xen lab: dom0 networking, guests and their checks",
		Long: `labctl turns the "Xen inside VirtualBox" MirageOS lab into code.

On any Linux machine, --target sim builds the same lab from network
namespaces (sudo labctl up --target sim). Logs go to stderr, data to
stdout; --json prints one machine-readable document (schema 2, docs/json.md).`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			level := slog.LevelInfo
			if a.verbose {
				level = slog.LevelDebug
			}
			a.log = newLogger(os.Stderr, level)
			a.cmd = cmd
			return a.checkGlobalFlags(cmd)
		},
	}
	pf := root.PersistentFlags()
	pf.StringVarP(&a.specFile, "file", "f", "", "lab spec (YAML); default ./lab.yaml if present, else the built-in defaults")
	pf.StringVar(&a.lab, "lab", "", "lab name (default: the spec's)")
	pf.StringVar(&a.stateRoot, "state-dir", envOr("LABCTL_STATE_DIR", "/var/lib/labctl"), "root of the per-lab state directories ($LABCTL_STATE_DIR)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "more detail on stderr: each step's items, the dom0 agent's own log, debug lines")
	root.AddCommand(
		newInitCmd(a),
		newValidateCmd(a),
		newVersionCmd(a),
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
	// --version (root only) prints what `labctl version` prints.
	root.Version = thisVersion().String()
	root.SetVersionTemplate("{{.Version}}\n")
	usageErrors(root)
	completer{a}.addCompletions(root)
	addExamples(root)
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
	if err := provision.CheckStateRoot(abs); err != nil {
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

// The command's parts, by concern: views of the one app (its flags and
// logger) with the methods of one concern each.
type (
	remoteOps struct{ *app } // reaching a remote dom0: SSH, upload, confirm, console, shell
	diagnosis struct{ *app } // doctor, graph and trace
	completer struct{ *app } // shell completion
	simOps    struct{ *app } // the simulated VM: up, down, its sshd
	checker   struct{ *app } // check and its reports
)
