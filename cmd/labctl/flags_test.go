package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// An empty --lab or --state-dir is bad input, not the default (issue 10
// item 2): `down --lab "$UNSET"` must not remove the default lab. The
// command must not run at all, so the check is the edge's.
func TestGlobalFlagsEmptyIsUsageError(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"empty lab", []string{"down", "--target", "sim", "--lab", "", "--state-dir", t.TempDir()}, "--lab: empty"},
		{"empty lab equals", []string{"status", "--lab=", "--state-dir", t.TempDir()}, "--lab: empty"},
		{"empty state dir", []string{"down", "--target", "sim", "--lab", "x", "--state-dir", ""}, "--state-dir: empty"},
		{"comment in state dir", []string{"status", "--state-dir", "/tmp/a #b"}, "meaning in dnsmasq's config"},
		{"newline in state dir", []string{"status", "--state-dir", "/tmp/a\nb"}, "meaning in dnsmasq's config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := newRoot()
			ran := false
			markRun(root, &ran)
			root.SetArgs(tc.args)
			err := root.ExecuteContext(context.Background())
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != exitUsage {
				t.Fatalf("err = %v, want exit %d", err, exitUsage)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to name %q", err, tc.want)
			}
			if ran {
				t.Error("the command ran despite the bad flag")
			}
		})
	}
}

// A relative --state-dir is made absolute once, at the edge (issue 10
// item 3), so what is journaled and handed to dnsmasq names one place.
func TestGlobalFlagsStateDirAbsolute(t *testing.T) {
	dir := t.TempDir()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Chdir(wd) })
	a := &app{stateRoot: "st"}
	cmd := &cobra.Command{}
	cmd.Flags().StringVar(&a.lab, "lab", "", "")
	if err := a.checkGlobalFlags(cmd); err != nil {
		t.Fatal(err)
	}
	real, _ := filepath.EvalSymlinks(dir)
	if got := a.stateRoot; got != filepath.Join(dir, "st") && got != filepath.Join(real, "st") {
		t.Errorf("state root = %q, want %q", got, filepath.Join(dir, "st"))
	}
}

// markRun replaces every command's Run so a test learns whether the
// command body was reached without doing anything.
func markRun(c *cobra.Command, ran *bool) {
	if c.RunE != nil || c.Run != nil {
		c.Run, c.RunE = nil, func(*cobra.Command, []string) error { *ran = true; return nil }
	}
	for _, sub := range c.Commands() {
		markRun(sub, ran)
	}
}
