package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labctl/labctl/attach"
	"github.com/labctl/labctl/provision"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

func newCurlCmd(a *app) *cobra.Command {
	var user string
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "curl GUEST [PATH]",
		Short: "Send the article's request (GET PATH?user=U&password=P) to a guest from the host side and print the answer",
		Long: `curl sends the article's request to the guest's service from the host
side (in the sim: from <lab>-host) and prints the body; it exits 0 on 200
and 1 otherwise. Users are stored hashed, so labctl knows no password but
the article's demo one: without --user it sends john/password, and only if
the lab's john still has that password. Otherwise name the user and pipe
the password:
  printf '%s\n' "$PW" | labctl curl auth-1 --user alice --password-stdin`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			if err := validGuestName(args[0]); err != nil {
				return &exitError{exitUsage, err}
			}
			path := "/"
			if len(args) == 2 {
				path = args[1]
			}
			password, err := a.curlCredentials(cmd, spec, &user, fromStdin)
			if err != nil {
				return err
			}
			target, err := attach.Target(path, user, password)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			st, err := onDom0[provision.GuestsResult](a, cmd.Context(), cmd, spec, "status", provision.AgentRequest{})
			if err != nil {
				return err
			}
			var hostport string
			var names []string
			for _, g := range st.Guests {
				if g.Name == args[0] {
					hostport = net.JoinHostPort(g.IP, strconv.Itoa(spec.Guests.Port))
				}
				names = append(names, g.Name)
			}
			if hostport == "" {
				return &exitError{exitFail, fmt.Errorf("no guest %s in lab %s (deployed: %s)", args[0], spec.Lab, strings.Join(names, ", "))}
			}
			// The password is in the target: log the path and user only.
			a.log.Debug("curl", "guest", args[0], "host", hostport, "path", path, "user", user)
			status, body, err := attach.Curl(cmd.Context(), a.hostDial(spec), hostport, target, 10*time.Second)
			if err != nil {
				return &exitError{exitFail, fmt.Errorf("curl %s: %w", args[0], err)}
			}
			fmt.Fprint(cmd.OutOrStdout(), body)
			if status != 200 {
				return &exitError{exitFail, fmt.Errorf("curl %s: HTTP %d", args[0], status)}
			}
			return nil
		},
	}
	addTargetFlags(cmd, a)
	cmd.Flags().StringVar(&user, "user", "", "a user the lab has (default: the demo user john, if his password is still the article's)")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the user's password from stdin (one line)")
	return cmd
}

// curlCredentials decides what curl can honestly send: the demo user
// only while his stored hash matches the demo password; any other user
// with the password given on stdin (or typed at a terminal prompt).
func (a *app) curlCredentials(cmd *cobra.Command, spec provision.Spec, user *string, fromStdin bool) (string, error) {
	if *user == "" && !fromStdin {
		d, err := provision.UsersDir(a.stateRoot, spec, true)
		if err != nil {
			return "", err
		}
		creds, err := d.Load()
		if err != nil {
			return "", &exitError{exitFail, fmt.Errorf("users of lab %s: %w", spec.Lab, err)}
		}
		if !attach.DemoUsable(creds) {
			return "", &exitError{exitUsage, fmt.Errorf("lab %s has no demo user %s with the article's password (users are stored hashed, so labctl knows no other password): use --user U --password-stdin",
				spec.Lab, attach.DemoUser)}
		}
		*user = attach.DemoUser
		return attach.DemoPassword, nil
	}
	if *user == "" {
		return "", &exitError{exitUsage, errors.New("--password-stdin needs --user")}
	}
	in := cmd.InOrStdin()
	if !fromStdin {
		f, ok := in.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", &exitError{exitUsage, errors.New("no terminal for the password prompt: pipe it with --password-stdin")}
		}
		fmt.Fprintf(cmd.ErrOrStderr(), "password for %s: ", *user)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("reading password: %w", err)
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("--password-stdin: %w", err)
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", &exitError{exitUsage, errors.New("--password-stdin: stdin held no password")}
	}
	return line, nil
}
