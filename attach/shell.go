// Package attach connects the user to the lab's parts: a shell in the
// simulated host's or dom0's namespace, a guest's console followed as it
// grows, and the article's curl request sent from the host side.
package attach

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/vmctl"
)

// ShellOptions says which shell to start where.
type ShellOptions struct {
	Netns string // the namespace to enter
	Label string // the prompt marker's name ("lab1-dom0")
	// Shell is the user's $SHELL; /bin/sh when empty.
	Shell          string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Env            []string // the environment to pass on (os.Environ())
	TempDir        string   // for bash's rcfile; os.TempDir() when empty
}

// Shell runs the shell inside the namespace and returns its exit code.
// The prompt carries "[labctl LABEL]" and the environment LABCTL_NETNS, so
// a user never mistakes the lab's shell for the machine's. The shell is
// not tied to ctx: Ctrl-C belongs to the shell's foreground job, and
// labctl (whose own SIGINT handler only cancels ctx) waits for it.
func Shell(ctx context.Context, o ShellOptions) (int, error) {
	if o.Netns == "" {
		return 0, errors.New("shell: no namespace given")
	}
	sh := o.Shell
	if sh == "" {
		sh = "/bin/sh"
	}
	if !filepath.IsAbs(sh) {
		return 0, fmt.Errorf("$SHELL %q: expected an absolute path like /bin/bash", sh)
	}
	marker := "[labctl " + o.Label + "] "
	// A plain prompt: sh (dash) and most shells expand no \w or \$.
	prompt := "$ "
	if os.Geteuid() == 0 {
		prompt = "# "
	}
	env := append(withoutPS1(o.Env), "LABCTL_NETNS="+o.Netns, "PS1="+marker+prompt)
	var args []string
	if filepath.Base(sh) == "bash" {
		// bash sets PS1 from its rc files, overriding the environment's;
		// an rcfile that sources them first keeps the user's setup and
		// puts the marker in front (bash(1): --rcfile file).
		rc, err := os.CreateTemp(o.TempDir, "labctl-bashrc-*")
		if err != nil {
			return 0, fmt.Errorf("shell: %w", err)
		}
		defer os.Remove(rc.Name())
		fmt.Fprintf(rc, "[ -f /etc/bash.bashrc ] && . /etc/bash.bashrc\n[ -f ~/.bashrc ] && . ~/.bashrc\nPS1=%s\"$PS1\"\n", shellQuote(marker))
		if err := rc.Close(); err != nil {
			return 0, fmt.Errorf("shell: %w", err)
		}
		args = append(args, "--rcfile", rc.Name())
	}
	cmd := exec.Command(sh, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr, cmd.Env = o.Stdin, o.Stdout, o.Stderr, env
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := (vmctl.Netns{Name: o.Netns}).Start(cmd); err != nil {
		return 0, fmt.Errorf("starting %s in %s: %w", sh, o.Netns, err)
	}
	err := cmd.Wait()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee):
		return ee.ExitCode(), nil
	}
	return 0, fmt.Errorf("%s in %s: %w", sh, o.Netns, err)
}

func withoutPS1(env []string) []string {
	out := make([]string, 0, len(env))
	for _, e := range env {
		if !strings.HasPrefix(e, "PS1=") && !strings.HasPrefix(e, "LABCTL_NETNS=") {
			out = append(out, e)
		}
	}
	return out
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
