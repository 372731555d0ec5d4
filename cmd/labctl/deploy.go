package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/labctl/labctl/attach"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/service/check"
	"github.com/labctl/labctl/statedir"
	"github.com/labctl/labctl/vmctl"
	"github.com/spf13/cobra"
)

// hostDial dials from the host side: the sim's <lab>-host namespace, or
// this machine.
func (a *app) hostDial(spec provision.Spec) check.DialFunc {
	if a.target == targetSim {
		host, _, _ := vmctl.SimNames(spec.Lab)
		return vmctl.DialIn(host)
	}
	var d net.Dialer
	return d.DialContext
}

func (a *app) simInfo(spec provision.Spec) *provision.SimInfo {
	if a.target != targetSim {
		return nil
	}
	h, d, w := vmctl.SimNames(spec.Lab)
	return &provision.SimInfo{HostNetns: h, Dom0Netns: d, WANNetns: w}
}

func (a *app) deploy(cmd *cobra.Command, spec provision.Spec, plan bool) (*provision.DeployResult, error) {
	img, sum, err := provision.BuildUsersImage(a.stateRoot, spec, plan, a.log)
	if err != nil {
		return nil, err
	}
	r, err := onDom0[provision.DeployResult](a, cmd.Context(), cmd, spec, "deploy", provision.AgentRequest{Plan: plan, Deploy: provision.DeployInput{Image: img, ImageSHA: sum}})
	if err != nil {
		return nil, err
	}
	if r.OK && !plan {
		if failed := provision.ProbeFromHost(cmd.Context(), a.hostDial(spec), r.Guests, spec.Guests.Port); len(failed) > 0 {
			r.OK = false
			r.Error = "healthy from dom0 but not from the host: " + strings.Join(failed, "; ")
		}
	}
	return r, nil
}

func newDeployCmd(a *app) *cobra.Command {
	var plan, detailed bool
	var replicas int
	var runtime string
	cmd := &cobra.Command{
		Use:         "deploy",
		Annotations: map[string]string{annExit: "2 changes (--plan --detailed-exitcode)"},
		Short:       "Build the users image, boot the guests with pinned leases, health-check them from dom0 and the host",
		Args:        cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkDetailedExitcode(detailed, plan); err != nil {
				return err
			}
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("replicas") {
				spec.Guests.Replicas = replicas
				if err := spec.Validate(); err != nil {
					return &exitError{exitUsage, fmt.Errorf("--replicas: %w", err)}
				}
				// Before the deploy: a deploy that fails or is killed
				// still leaves the count asked for as the lab's intent.
				if !plan {
					if err := a.rememberReplicas(spec.Lab, replicas); err != nil {
						return &exitError{exitFail, err}
					}
				}
			}
			if cmd.Flags().Changed("runtime") {
				spec.Guests.Runtime = runtime
				if err := spec.Validate(); err != nil {
					return &exitError{exitUsage, fmt.Errorf("--runtime: %w", err)}
				}
			}
			r, err := a.deploy(cmd, spec, plan)
			if err != nil {
				return err
			}
			if err := a.finish(cmd, r); err != nil {
				return err
			}
			if plan && !a.jsonOut {
				if err := provision.PrintRuntimePlans(cmd.OutOrStdout(), *r); err != nil {
					return err
				}
			}
			if !a.jsonOut && !plan {
				user, password, _ := a.upCredentials(spec)
				a.printTry(cmd.OutOrStdout(), spec, r, user, password)
			}
			return planExit(detailed, r)
		},
	}
	addTargetFlags(cmd, a)
	addJSONFlag(cmd, a)
	addOutputFlag(cmd, a)
	cmd.Flags().BoolVar(&plan, "plan", false, "list what would change; change nothing")
	addDetailedExitcode(cmd, &detailed)
	cmd.Flags().IntVar(&replicas, "replicas", 1, "number of guests, remembered for the lab until the spec's guests.replicas changes (default: the spec's, or the last --replicas)")
	cmd.Flags().StringVar(&runtime, "runtime", provision.Default().Guests.Runtime, "guest runtime: "+provision.RuntimesHelp()+"; default: the spec's guests.runtime")
	return cmd
}

// printTry shows each guest's URL and the exact command to try it, as
// user with password — upCredentials' answer: the demo user with his
// password while it is still his, else the first user, whose password
// only the user knows (issue 10).
func (a *app) printTry(w io.Writer, spec provision.Spec, r *provision.DeployResult, user, password string) {
	host, _, _ := vmctl.SimNames(spec.Lab)
	query := "user=john&password=password"
	switch {
	case password == "" && user != "":
		query = "user=" + url.QueryEscape(user) + "&password=PASSWORD"
	case password != "":
		query = "user=" + url.QueryEscape(user) + "&password=" + url.QueryEscape(password)
	}
	fmt.Fprintln(w)
	for _, g := range r.Guests {
		line := fmt.Sprintf("curl -s '%s?%s'", g.URL, query)
		if a.target == targetSim {
			line = "sudo ip netns exec " + host + " " + line
		}
		fmt.Fprintf(w, "%s  %s\n  try: %s\n", g.Name, g.URL, line)
	}
}

func newDestroyCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "destroy GUEST",
		Short: "Stop one guest and remove its pin and lease (deploy brings it back)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			o, err := a.runOnDom0With(cmd.Context(), cmd, spec, "destroy", provision.AgentRequest{Guest: args[0]})
			if err != nil {
				return err
			}
			r := o.Head()
			if a.jsonOut {
				if err := writeJSON(cmd.OutOrStdout(), normalize(r)); err != nil {
					return err
				}
			}
			if !r.OK {
				return &exitError{exitFail, fmt.Errorf("destroy %s: %s", args[0], r.Error)}
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "destroyed %s\n", args[0])
			return nil
		},
	}
	addTargetFlags(cmd, a)
	addJSONFlag(cmd, a)
	return cmd
}

func newLogsCmd(a *app) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:         "logs GUEST",
		Annotations: map[string]string{annExit: "0 when --follow is stopped by a signal"},
		Short:       "Print a guest's console log; --follow (-F) keeps printing what it appends",
		Long: `logs prints a guest's console log. With --follow (short -F, as tail -F)
it then prints what the guest appends until Ctrl-C or SIGTERM. -f is not
follow: on every labctl command -f is --file, the lab spec.`,
		// -f is the persistent --file; "labctl logs -f GUEST" parses GUEST
		// as the spec file and leaves no argument: say what was meant.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 && cmd.Flags().Changed("file") {
				return &exitError{exitUsage, fmt.Errorf("logs: no GUEST (-f %s is --file, the lab spec; to follow the log use --follow or -F)", a.specFile)}
			}
			return cobra.ExactArgs(1)(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if follow && a.jsonOut {
				return &exitError{exitUsage, errors.New("logs: --json and --follow: a stream is not one document; drop one")}
			}
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			if err := validGuestName(args[0]); err != nil {
				return &exitError{exitUsage, err}
			}
			p := statedir.Layout{Root: a.stateRoot, Lab: spec.Lab}.GuestFile(args[0], statedir.ConsoleLog)
			f, err := os.Open(p)
			if err != nil {
				return &exitError{exitFail, fmt.Errorf("no console log for guest %s in lab %s: %w", args[0], spec.Lab, err)}
			}
			if follow {
				f.Close()
				return attach.Follow(cmd.Context(), p, cmd.OutOrStdout(), false, 100*time.Millisecond)
			}
			defer f.Close()
			if a.jsonOut {
				b, err := io.ReadAll(f)
				if err != nil {
					return &exitError{exitFail, fmt.Errorf("console log %s: %w", p, err)}
				}
				return writeJSON(cmd.OutOrStdout(), logsDoc{Schema: provision.SchemaVersion, Command: "logs", Lab: spec.Lab,
					OK: true, Guest: args[0], Path: p, Log: string(b)})
			}
			_, err = io.Copy(cmd.OutOrStdout(), f)
			return err
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "F", false, "keep printing what the guest appends (until Ctrl-C)")
	addJSONFlag(cmd, a)
	addTargetOnly(cmd, a, "logs reads this machine's copy of the console log; on a remote dom0 use labctl console GUEST")
	return cmd
}

func validGuestName(n string) error {
	if n == "" || strings.ContainsAny(n, "/\x00") || n == "." || n == ".." {
		return fmt.Errorf("guest %q: expected a guest name like auth-1", n)
	}
	return nil
}

func newCheckCmd(a *app) *cobra.Command {
	var junit, user string
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Probe every guest's auth contract from the host (valid, wrong password, unknown user, missing parameters, hostile input)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			lab := a.lab
			reports, err := func() ([]check.Report, error) {
				spec, err := a.loadSpec()
				if err != nil {
					return nil, err
				}
				lab = spec.Lab
				password := "password"
				if fromStdin {
					if password, err = readPassword(cmd, true); err != nil {
						return nil, &exitError{exitUsage, err}
					}
				}
				st, err := onDom0[provision.GuestsResult](a, cmd.Context(), cmd, spec, "status", provision.AgentRequest{})
				if err != nil {
					return nil, err
				}
				if len(st.Guests) == 0 {
					return nil, &exitError{exitFail, fmt.Errorf("lab %s has no guests: run %s", spec.Lab, a.hint(cmd, spec.Lab, "deploy"))}
				}
				running, missing := provision.SplitDeclared(spec, st.Guests)
				reports, err := checker{a}.check(cmd.Context(), spec, running, user, password)
				if err != nil {
					return nil, err
				}
				return append(reports, missing...), nil
			}()
			if junit != "" {
				// Written also when check could not run, with why as the
				// one <error>: CI shows red, not "no test results".
				if jerr := writeJUnit(junit, lab, reports, err); jerr != nil {
					return errors.Join(err, jerr)
				}
			}
			if err != nil {
				return err
			}
			return checker{a}.printCheck(cmd.OutOrStdout(), lab, reports)
		},
	}
	addTargetFlags(cmd, a)
	addJSONFlag(cmd, a)
	addBundleOnFailure(cmd, a)
	cmd.Flags().StringVar(&junit, "junit", "", "also write a JUnit XML report to FILE")
	cmd.Flags().StringVar(&user, "user", "john", "a user the guests store")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read that user's password from stdin (default: the demo password)")
	return cmd
}

// writeJUnit writes check's JUnit file: the reports, or the abort.
func writeJUnit(path, lab string, reports []check.Report, abort error) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("--junit: %w", err)
	}
	if abort != nil {
		err = check.WriteJUnitAbort(f, lab, abort)
	} else {
		err = check.WriteJUnit(f, reports)
	}
	if cerr := f.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("--junit %s: %w", path, err)
	}
	return nil
}

// check probes the guests with the whole contract (only the refusals
// when no password is known: users are stored hashed).
func (a checker) check(ctx context.Context, spec provision.Spec, guests []provision.GuestStatus, user, password string) ([]check.Report, error) {
	cases := check.ProbeCases(user, password)
	if password == "" {
		cases = check.RefusalCases(user)
	}
	return a.checkCases(ctx, spec, guests, cases)
}

func (a checker) checkCases(ctx context.Context, spec provision.Spec, guests []provision.GuestStatus, cases []check.Case) ([]check.Report, error) {
	return provision.CheckGuests(ctx, guests, cases, a.hostDial(spec), a.log)
}

func (a checker) printCheck(w io.Writer, lab string, reports []check.Report) error {
	failed := checkFailures(reports)
	if a.jsonOut {
		if err := writeJSON(w, a.checkDoc(lab, reports, len(failed) == 0)); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "GUEST\tURL\tPASSED\tFAILED\tMS")
		for _, r := range reports {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.1f\n", r.Guest, r.URL, r.Passed, r.Failed, r.DurationMS)
		}
		tw.Flush()
	}
	return checkFailed(failed)
}

// checkFailures lists each failed case of reports, one line each.
func checkFailures(reports []check.Report) []string {
	var failed []string
	for _, r := range reports {
		for _, f := range r.Failures() {
			failed = append(failed, fmt.Sprintf("%s: %s: expected %s, got %s%s", r.Guest, f.Name, f.Expected, f.Got, errSuffix(f.Error)))
		}
	}
	return failed
}

func checkFailed(failed []string) error {
	if len(failed) > 0 {
		return &exitError{exitFail, fmt.Errorf("check failed:\n  %s", strings.Join(failed, "\n  "))}
	}
	return nil
}

func errSuffix(e string) string {
	if e == "" {
		return ""
	}
	return " (" + e + ")"
}
