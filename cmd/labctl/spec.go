package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"

	"github.com/labctl/labctl/provision"
	"github.com/spf13/cobra"
)

// loadSpec resolves the spec: -f FILE, else ./lab.yaml, else the defaults;
// --lab overrides its name.
func (a *app) loadSpec() (provision.Spec, error) {
	var s provision.Spec
	var err error
	switch {
	case a.specFile != "":
		s, err = provision.LoadSpec(a.specFile)
	default:
		if _, statErr := os.Stat("lab.yaml"); statErr == nil {
			s, err = provision.LoadSpec("lab.yaml")
		} else {
			s = provision.Default()
		}
	}
	if err != nil {
		return s, &exitError{exitUsage, err}
	}
	if a.lab != "" {
		s.Lab = a.lab
		if err := s.Validate(); err != nil {
			return s, &exitError{exitUsage, fmt.Errorf("--lab: %w", err)}
		}
	}
	a.fileReplicas = s.Guests.Replicas
	a.applyDesired(&s)
	return s, nil
}

// defaultLabLine is the default spec's own "lab:" line (the first key).
var defaultLabLine = regexp.MustCompile(`(?m)^lab: .*$`)

func newInitCmd(a *app) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "init",
		Short: "Write the default lab spec to lab.yaml (or -f FILE) for editing",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			path := a.specFile
			if path == "" {
				path = "lab.yaml"
			}
			// --lab names the lab in the file written (it used to keep the
			// default's "mirage"); checked the way the spec will be read.
			content := provision.DefaultSpecYAML()
			if a.lab != "" {
				content = defaultLabLine.ReplaceAll(content, []byte("lab: "+a.lab))
				if _, err := provision.ParseSpec(content, "--lab"); err != nil {
					return &exitError{exitUsage, err}
				}
			}
			flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
			if force {
				flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
			}
			f, err := os.OpenFile(path, flags, 0o644)
			if errors.Is(err, os.ErrExist) {
				return &exitError{exitUsage, fmt.Errorf("%s exists: edit it, or pass --force to overwrite it with the defaults", path)}
			}
			if err != nil {
				return err
			}
			if _, err := f.Write(content); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if a.jsonOut {
				abs, err := filepath.Abs(path)
				if err != nil {
					return fmt.Errorf("init: %s: %w", path, err)
				}
				return writeJSON(cmd.OutOrStdout(), initDoc{Schema: provision.SchemaVersion, Command: "init", OK: true, Path: abs})
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "wrote", path)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "overwrite an existing file")
	addJSONFlag(cmd, a)
	return cmd
}
