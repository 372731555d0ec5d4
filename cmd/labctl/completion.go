package main

import (
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/service/users"
	"github.com/spf13/cobra"
)

// guestVerbs take a guest name as their first argument.
var guestVerbs = map[string]bool{"logs": true, "destroy": true, "console": true, "curl": true, "trace": true}

// addCompletions gives shell completion (labctl completion bash|zsh|fish)
// what it cannot guess: --target's values, the lab's guests for the
// verbs that name one, the lab's users for users remove, dom0|host for
// shell. Names come from this machine's state directory, read only.
func (a completer) addCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Flags().Lookup("target") != nil {
			_ = c.RegisterFlagCompletionFunc("target", func(*cobra.Command, []string, string) ([]cobra.Completion, cobra.ShellCompDirective) {
				return []cobra.Completion{"local\tthis machine is dom0", "sim\tthe simulated lab", "vagrant\tthe Vagrant VM of this directory", "vagrant=\tthe Vagrant VM of DIR", "ssh://\tUSER@HOST[:PORT]"}, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveNoSpace
			})
		}
		switch {
		case guestVerbs[c.Name()]:
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return filterPrefix(a.guestNames(), toComplete), cobra.ShellCompDirectiveNoFileComp
			}
		case c.Name() == "shell":
			c.ValidArgs = []cobra.Completion{"dom0", "host"}
		case c.Name() == "remove" && c.Parent() != nil && c.Parent().Name() == "users":
			c.ValidArgsFunction = func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return filterPrefix(a.userNames(), toComplete), cobra.ShellCompDirectiveNoFileComp
			}
		}
	}
	walk(root)
}

// completionDir is the lab's state directory for completion: --lab, or
// the spec's lab; "" when neither can be read (no completion, no error).
func (a completer) completionDir() string {
	spec, err := a.loadSpec()
	if err != nil {
		return ""
	}
	return provision.StateDir(a.stateRoot, spec.Lab)
}

func (a completer) guestNames() []string {
	dir := a.completionDir()
	if dir == "" {
		return nil
	}
	gs, _ := provision.ReadGuests(dir)
	names := make([]string, 0, len(gs))
	for _, g := range gs {
		names = append(names, g.Name)
	}
	return names
}

func (a completer) userNames() []string {
	dir := a.completionDir()
	if dir == "" {
		return nil
	}
	names, _ := users.Dir{Path: filepath.Join(dir, "users")}.List()
	return names
}

func filterPrefix(names []string, prefix string) []cobra.Completion {
	var out []cobra.Completion
	for _, n := range names {
		if strings.HasPrefix(n, prefix) {
			out = append(out, n)
		}
	}
	return out
}
