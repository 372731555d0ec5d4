package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/service/users"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// labUsers is the users directory of the spec's lab. Only a command that
// adds a user creates the lab's state directory (create); list and
// remove write nothing when there is nothing (issue 10).
func (a *app) labUsers(create bool) (users.Dir, error) {
	spec, err := a.loadSpec()
	if err != nil {
		return users.Dir{}, err
	}
	return provision.UsersDir(a.stateRoot, spec, create)
}

// usersLab is the lab the users verbs act on, for their hints.
func (a *app) usersLab() string {
	if spec, err := a.loadSpec(); err == nil {
		return spec.Lab
	}
	return a.lab
}

func newUsersCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "users",
		Short: "Manage the lab's users (the auth service's store); deploy puts them in the users image",
	}
	add, remove, list := newUsersAddCmd(a), newUsersRemoveCmd(a), newUsersListCmd(a)
	addJSONFlag(list, a)
	// Users live on this machine whatever the target (deploy sends the
	// image): --target is accepted so one command line fits every verb.
	for _, c := range []*cobra.Command{add, remove, list} {
		addTargetOnly(c, a, "")
	}
	cmd.AddCommand(add, remove, list)
	return cmd
}

func newUsersAddCmd(a *app) *cobra.Command {
	var fromStdin bool
	add := &cobra.Command{
		Use:   "add NAME",
		Short: "Add a user; the password comes from a no-echo prompt or --password-stdin",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// Everything is checked before the lab's directory is made: a
			// rejected add writes nothing.
			if _, err := a.loadSpec(); err != nil {
				return err
			}
			if err := users.CheckName(args[0]); err != nil {
				return &exitError{exitUsage, err}
			}
			pw, err := readPassword(cmd, fromStdin)
			if err != nil {
				return &exitError{exitUsage, err}
			}
			if err := users.CheckPassword(pw); err != nil {
				return &exitError{exitUsage, fmt.Errorf("user %s: %w", args[0], err)}
			}
			d, err := a.labUsers(true)
			if err != nil {
				return err
			}
			if err := d.Add(args[0], pw); err != nil {
				var fe *users.FieldError
				if errors.As(err, &fe) || errors.Is(err, users.ErrExists) {
					return &exitError{exitUsage, err}
				}
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "added %s; run %s to put it in the guests' users image\n", args[0], a.hint(cmd, a.usersLab(), "deploy"))
			return nil
		},
	}
	add.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from the first line of stdin")
	return add
}

func newUsersRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME",
		Short: "Remove a user",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := a.labUsers(false)
			if err != nil {
				return err
			}
			if err := d.Remove(args[0]); err != nil {
				if errors.Is(err, users.ErrNotFound) {
					return &exitError{exitUsage, err}
				}
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "removed %s; run %s to update the guests\n", args[0], a.hint(cmd, a.usersLab(), "deploy"))
			return nil
		},
	}
}

func newUsersListCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the users, one per line",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := a.labUsers(false)
			if err != nil {
				return err
			}
			// A lab labctl has never seen is an error, not an empty list:
			// a typo in --lab would otherwise read as "no users" (issue 12).
			if _, err := os.Stat(filepath.Dir(d.Path)); errors.Is(err, os.ErrNotExist) {
				return &exitError{exitFail, fmt.Errorf("users list: no lab %s under %s (nothing provisioned, deployed or added there; users add creates it)", filepath.Base(filepath.Dir(d.Path)), a.stateRoot)}
			}
			names, err := d.List()
			if err != nil {
				return err
			}
			if a.jsonOut {
				spec, err := a.loadSpec()
				if err != nil {
					return err
				}
				if names == nil {
					names = []string{}
				}
				return writeJSON(cmd.OutOrStdout(), usersDoc{Schema: provision.SchemaVersion, Command: "users list", Lab: spec.Lab, OK: true, Users: names})
			}
			for _, n := range names {
				fmt.Fprintln(cmd.OutOrStdout(), n)
			}
			return nil
		},
	}
}

// readPassword reads a password without echo from the terminal, or the
// first line of stdin. It never logs or prints it.
func readPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	in := cmd.InOrStdin()
	if !fromStdin {
		f, ok := in.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", errors.New("no terminal for the password prompt: pipe it with --password-stdin")
		}
		fmt.Fprint(cmd.ErrOrStderr(), "password: ")
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("reading password: %w", err)
		}
		fmt.Fprint(cmd.ErrOrStderr(), "again: ")
		b2, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(cmd.ErrOrStderr())
		if err != nil {
			return "", fmt.Errorf("reading password: %w", err)
		}
		if string(b) != string(b2) {
			return "", errors.New("the passwords differ")
		}
		return string(b), nil
	}
	line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading password from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}
