package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/vmctl"
	"github.com/labctl/labctl/vmctl/sshx"
	"github.com/spf13/cobra"
)

// Targets: where dom0 is.
const (
	targetLocal   = "local"   // this machine is dom0
	targetSim     = "sim"     // the simulated lab's <lab>-dom0 namespace
	targetVagrant = "vagrant" // vagrant[=DIR]: the Vagrant VM, over SSH
	targetSSH     = "ssh"     // ssh://USER@HOST[:PORT]
)

// targetSpec is a parsed --target.
type targetSpec struct {
	kind string // one of the target constants
	dir  string // vagrant: the Vagrant project directory
	url  string // ssh: the ssh:// URL
}

func (t targetSpec) remote() bool { return t.kind == targetVagrant || t.kind == targetSSH }

// parseTarget reads --target: local, sim, vagrant, vagrant=DIR or
// ssh://USER@HOST[:PORT].
func parseTarget(s string) (targetSpec, error) {
	switch {
	case s == targetLocal || s == targetSim:
		return targetSpec{kind: s}, nil
	case s == targetVagrant:
		return targetSpec{kind: targetVagrant, dir: "."}, nil
	case strings.HasPrefix(s, targetVagrant+"="):
		dir := strings.TrimPrefix(s, targetVagrant+"=")
		if dir == "" {
			return targetSpec{}, fmt.Errorf("--target %q: expected vagrant=DIR, the directory of the Vagrantfile", s)
		}
		return targetSpec{kind: targetVagrant, dir: dir}, nil
	case strings.HasPrefix(s, "ssh://"):
		if _, _, err := sshx.ParseTarget(s); err != nil {
			return targetSpec{}, fmt.Errorf("--target: %w", err)
		}
		return targetSpec{kind: targetSSH, url: s}, nil
	}
	return targetSpec{}, fmt.Errorf("--target %q: expected local, sim, vagrant[=DIR] or ssh://USER@HOST[:PORT]", s)
}

func addTargetFlags(cmd *cobra.Command, a *app) {
	f := cmd.Flags()
	f.StringVar(&a.target, "target", envOr("LABCTL_TARGET", targetLocal),
		"where dom0 is: local (this machine), sim (the simulated lab), vagrant[=DIR] (the Vagrant VM of DIR, over SSH) or ssh://USER@HOST[:PORT] ($LABCTL_TARGET)")
	addRemoteFlags(cmd, &a.remote)
}

// addTargetOnly gives a verb that reads this machine's state (users,
// logs) the --target flag without the remote-only flags: a script that
// passes --target to every verb works, and help shows no SSH flags
// where they do nothing. localOnly verbs refuse a remote target, saying
// what to use there.
func addTargetOnly(cmd *cobra.Command, a *app, localOnly string) {
	cmd.Flags().StringVar(&a.target, "target", envOr("LABCTL_TARGET", targetLocal),
		"where dom0 is: local, sim, vagrant[=DIR] or ssh://USER@HOST[:PORT] ($LABCTL_TARGET)")
	if cmd.Annotations == nil {
		cmd.Annotations = map[string]string{}
	}
	cmd.Annotations[annTargets] = "any (ignored: this machine's state)"
	if localOnly != "" {
		cmd.Annotations[annTargets] = "local, sim"
	}
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		ts, err := parseTarget(a.target)
		if err != nil {
			return &exitError{exitUsage, err}
		}
		if localOnly != "" && ts.remote() {
			return &exitError{exitUsage, fmt.Errorf("--target %s: %s", a.target, localOnly)}
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// runOnDom0 runs one agent verb on the target's dom0.
func (a *app) runOnDom0(ctx context.Context, cmd *cobra.Command, verb string, plan bool) (provision.Outcome, error) {
	spec, err := a.loadSpec()
	if err != nil {
		return nil, err
	}
	return a.runOnDom0With(ctx, cmd, spec, verb, provision.AgentRequest{Plan: plan})
}

// runOnDom0With runs one agent verb with a prepared request. For a remote
// target one SSH connection carries everything: labctl's upload, the
// users image (deploy) and the agent run. The result is of the verb's
// own type (provision.NewResult); onDom0 names it.
func (a *app) runOnDom0With(ctx context.Context, cmd *cobra.Command, spec provision.Spec, verb string, req provision.AgentRequest) (provision.Outcome, error) {
	progress := a.progress(cmd.ErrOrStderr())
	c, err := a.openDom0(ctx, spec)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	req.Spec, req.StateRoot, req.NoResolv = spec, c.stateRoot, c.noResolv
	if verb == "deploy" {
		if err := c.placeImage(ctx, spec, &req.Deploy, req.Plan); err != nil {
			return nil, &exitError{exitFail, err}
		}
	}
	var res provision.Outcome
	switch {
	case c.t == nil:
		res = provision.ServeLocal(ctx, verb, req, provision.Options{Log: a.log}, progress)
	case c.enter != nil && (verb == "provision" || verb == "teardown"):
		// The sim's provision and teardown enter dom0's namespace from
		// this process: no agent to start (see provision.Options.Enter).
		res = provision.ServeLocal(ctx, verb, req, provision.Options{Log: a.log, Enter: c.enter}, progress)
	case c.ssh != nil && verb == "provision" && !req.Plan && a.remote.confirmTimeout > 0:
		res, err = remoteOps{a}.provisionConfirmed(ctx, c, spec, req, progress)
		if err != nil {
			return res, err
		}
	default:
		if a.verbose {
			req.Log = cmd.ErrOrStderr() // -v: the agent's own log lines too
		}
		res, err = provision.CallAgent(ctx, c.t, c.exe, verb, req, progress)
		if err != nil {
			return res, err
		}
	}
	h := res.Head()
	h.Target = a.target
	h.Sim = a.simInfo(spec)
	return res, nil
}

// onDom0 is runOnDom0With for a verb whose result type R the caller
// names: provision.NewResult's type for verb (GuestsResult for status,
// DeployResult for deploy).
func onDom0[R any, PR interface {
	*R
	provision.Outcome
}](a *app, ctx context.Context, cmd *cobra.Command, spec provision.Spec, verb string, req provision.AgentRequest) (*R, error) {
	o, err := a.runOnDom0With(ctx, cmd, spec, verb, req)
	if err != nil {
		return nil, err
	}
	return provision.ResultAs[R, PR](o), nil
}

// dom0Conn is how one command reaches dom0's agent.
type dom0Conn struct {
	t         vmctl.Transport          // nil: the agent runs in this process
	enter     func(func() error) error // sim: runs f inside dom0's namespace
	exe       string                   // labctl on dom0
	stateRoot string                   // dom0's state root
	noResolv  bool
	ssh       *sshx.Transport // remote targets
	log       *slog.Logger
}

func (c *dom0Conn) Close() error {
	if c.ssh != nil {
		return c.ssh.Close()
	}
	return nil
}

// openDom0 reaches the target's dom0; for a remote target it connects
// (verifying the host key) and puts labctl there when dom0's copy differs.
func (a *app) openDom0(ctx context.Context, spec provision.Spec) (*dom0Conn, error) {
	ts, err := parseTarget(a.target)
	if err != nil {
		return nil, &exitError{exitUsage, err}
	}
	switch ts.kind {
	case targetLocal:
		return &dom0Conn{stateRoot: a.stateRoot, log: a.log}, nil
	case targetSim:
		_, dom0, _ := vmctl.SimNames(spec.Lab)
		if _, err := os.Stat("/run/netns/" + dom0); err != nil {
			return nil, a.notUp(a.cmd, spec.Lab, "")
		}
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		// The sim's WAN is a dead end: dnsmasq forwards no DNS there.
		ns := vmctl.Netns{Name: dom0}
		return &dom0Conn{t: ns, enter: ns.Do, exe: exe, stateRoot: a.stateRoot, noResolv: true, log: a.log}, nil
	}
	return remoteOps{a}.openRemote(ctx, spec, ts)
}

// progress renders step events on stderr as they arrive.
func (a *app) progress(w io.Writer) func(provision.StepResult) {
	return func(s provision.StepResult) {
		if s.Status == provision.StatusProgress {
			// A line of long work (the unikernel build) as it happens.
			fmt.Fprintf(w, "%-8s %-12s %s\n", "...", s.Step, s.Detail)
			return
		}
		detail := s.Detail
		if s.Error != "" {
			detail = s.Error
		}
		if detail == "" && s.Status == provision.StatusOK {
			detail = "as desired"
		}
		fmt.Fprintf(w, "%-8s %-12s %s (%.1f ms)\n", s.Status, s.Step, detail, s.ElapsedMS)
		if a.verbose {
			// -v: every item the step observed, as -o wide prints them.
			for _, it := range s.Items {
				fmt.Fprintf(w, "%-8s %-12s   %s\n", "", "", it)
			}
		}
	}
}

// printResult writes the result to stdout: JSON, or a table of items
// (and the guests, for the verbs that report them).
func (a *app) printResult(w io.Writer, o provision.Outcome) error {
	if a.jsonOut {
		return writeJSON(w, normalize(o))
	}
	r, guests := o.Head(), provision.GuestsOf(o)
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	if r.Command == "teardown" || r.Command == "destroy" {
		fmt.Fprintln(tw, "UNDO\tSTATUS\tWHAT")
		for _, s := range r.Steps {
			fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.TrimPrefix(s.Step, "undo:"), s.Status, s.Detail)
		}
	} else if a.output != "wide" {
		tw.Flush()
		printStepSummary(w, r)
	} else {
		fmt.Fprintln(tw, "STEP\tITEM\tDESIRED\tOBSERVED\tOK")
		for _, s := range r.Steps {
			for _, it := range s.Items {
				mark := "yes"
				if !it.OK {
					mark = "NO"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Step, it.Name, it.Desired, it.Observed, mark)
			}
		}
	}
	if len(guests) > 0 {
		fmt.Fprintln(tw, "\nGUEST\tMAC\tIP\tSTATE\tHEALTHY\tFROM HOST")
		for _, g := range guests {
			hp := g.HostProbe
			if hp == "" {
				hp = "-" // not probed by this command (status probes from dom0)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%v\t%s\n", g.Name, g.MAC, g.IP, g.State, g.Healthy, hp)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case r.Error != "" && r.Command == "status" && len(r.Drift) > 0:
		fmt.Fprintf(w, "\ndrift in lab %s:\n  %s\n", r.Lab, strings.Join(r.Drift, "\n  "))
	case r.Command == "provision" && r.Plan && len(r.Drift) == 0 && r.OK:
		fmt.Fprintf(w, "\nlab %s: nothing to change\n", r.Lab)
	case r.Command == "provision" && r.Plan && r.OK:
		fmt.Fprintf(w, "\nlab %s: would change:\n  %s\n", r.Lab, strings.Join(r.Drift, "\n  "))
	case r.Command == "provision" && r.OK && !r.Changed:
		fmt.Fprintf(w, "\nlab %s: already converged, nothing changed\n", r.Lab)
	case r.Command == "provision" && r.OK:
		fmt.Fprintf(w, "\nlab %s: converged\n", r.Lab)
	case r.Command == "deploy" && r.OK && !r.Plan:
		fmt.Fprintf(w, "\nlab %s: %d guests healthy from dom0 and the host\n", r.Lab, len(guests))
	case r.Command == "status" && r.OK:
		fmt.Fprintf(w, "\nlab %s: as specified, no drift\n", r.Lab)
	case r.Command == "teardown" && r.OK && len(r.Steps) == 0:
		fmt.Fprintf(w, "lab %s: nothing to undo\n", r.Lab)
	case r.Command == "teardown" && r.OK:
		fmt.Fprintf(w, "\nlab %s: restored\n", r.Lab)
	}
	return nil
}

// finish prints the result and maps it to an exit code.
func (a *app) finish(cmd *cobra.Command, o provision.Outcome) error {
	if err := a.printResult(cmd.OutOrStdout(), o); err != nil {
		return err
	}
	r := o.Head()
	switch {
	case r.OK:
		return nil
	case r.Command == "status" && r.Error == provision.ErrNotProvisioned.Error():
		return &exitError{exitDrift, fmt.Errorf("lab %s is not provisioned: labctl has nothing applied on dom0 (%d items differ from the spec); provision brings it up", r.Lab, len(r.Drift))}
	case r.Command == "status" && r.Error == provision.ErrDrift.Error():
		return &exitError{exitDrift, fmt.Errorf("lab %s has drifted from its spec (%d items)", r.Lab, len(r.Drift))}
	default:
		return &exitError{exitFail, fmt.Errorf("%s: %s", r.Command, r.Error)}
	}
}
