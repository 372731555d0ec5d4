package main

import (
	"fmt"
	"strings"

	"github.com/labctl/labctl/vmctl/sshx"
	"github.com/spf13/cobra"
)

// defaultStateRoot is --state-dir's default without $LABCTL_STATE_DIR.
const defaultStateRoot = "/var/lib/labctl"

// hintVerbs are the verbs a printed fix or hint may name bare
// ("labctl deploy"); fixCompleter gives each this run's flags.
var hintVerbs = []string{"provision", "deploy", "sim up", "up", "down", "teardown", "doctor"}

// hint is the command line "labctl VERB" for the lab this run acts on,
// with the flags that select it (issue 12 item 6): pasted as printed, it
// acts on the same lab in the same state directory, never on the
// defaults. Only flags VERB accepts are added: --target, --lab, --file
// when given, --state-dir when not /var/lib/labctl (also when it came
// from $LABCTL_STATE_DIR, which sudo or another shell drops), and the
// remote flags this run was given.
func (a *app) hint(cmd *cobra.Command, lab, verb string) string {
	line := "labctl " + verb
	if flags := a.hintFlags(cmd, lab, verb); len(flags) > 0 {
		line += " " + strings.Join(flags, " ")
	}
	return line
}

func (a *app) hintFlags(cmd *cobra.Command, lab, verb string) []string {
	if cmd == nil {
		cmd = &cobra.Command{} // no flags of this run known: only --target, --lab, --state-dir
	}
	to, _, err := cmd.Root().Find(strings.Fields(verb))
	if err != nil || to == cmd.Root() {
		to = nil
	}
	accepts := func(name string) bool { return to == nil || to.Flag(name) != nil }
	var args []string
	add := func(name, v string) {
		if accepts(name) {
			args = append(args, "--"+name, sshx.QuoteWord(v))
		}
	}
	// a.target holds --target's default even on verbs without the flag:
	// only a run that could choose a target hands it on, and the default
	// (local, unless $LABCTL_TARGET says otherwise) goes without saying.
	if f := cmd.Flag("target"); f != nil && a.target != "" && (f.Changed || a.target != targetLocal) {
		add("target", a.target)
	}
	if lab != "" { // unknown before the spec is read: the spec's then
		add("lab", lab)
	}
	if f := cmd.Flag("file"); f != nil && f.Changed {
		add("file", a.specFile)
	}
	if a.stateRoot != "" && a.stateRoot != defaultStateRoot {
		add("state-dir", a.stateRoot)
	}
	for _, name := range []string{"dom0-state-dir", "agent-binary", "identity", "known-hosts", "vagrant-machine"} {
		f := cmd.Flag(name)
		if f == nil || !f.Changed {
			continue
		}
		vals := []string{f.Value.String()}
		if name == "identity" {
			vals = a.remote.identities
		}
		for _, v := range vals {
			add(name, v)
		}
	}
	return args
}

// notUp is the error for a simulated lab whose namespaces are missing,
// naming the README's way to bring it up, then the bare VM's.
func (a *app) notUp(cmd *cobra.Command, lab, what string) error {
	return &exitError{exitFail, fmt.Errorf("simulated lab %s is not up%s: run `%s` (or `%s` for dom0 alone, unprovisioned)",
		lab, what, a.hint(cmd, lab, "up"), a.hint(cmd, lab, "sim up"))}
}
