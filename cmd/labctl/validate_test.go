package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// validate checks the spec alone: exit 0 valid, 2 invalid with the field
// named, and nothing written anywhere.
func TestValidate(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "lab: ux\nguests:\n  replicas: 2\n")
	typo := write("typo.yaml", "lab: ux\nnetwork:\n  bridg: br0\n")
	badValue := write("bad.yaml", "lab: ux\nguests:\n  replicas: 0\n")
	badLab := write("badlab.yaml", "lab: Not_A_Name\n")
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"valid file", []string{"-f", good}, exitOK, "good.yaml: valid (lab ux, guests auth-1..auth-2, runtime process)", ""},
		{"defaults", nil, exitOK, "the built-in defaults: valid", ""},
		{"--lab overrides", []string{"-f", good, "--lab", "other"}, exitOK, "valid (lab other,", ""},
		{"unknown key", []string{"-f", typo}, exitUsage, "", `unknown key "bridg" in network`},
		{"bad value", []string{"-f", badValue}, exitUsage, "", "guests.replicas"},
		{"bad lab name", []string{"-f", badLab}, exitUsage, "", "lab:"},
		{"bad --lab", []string{"-f", good, "--lab", "Bad_"}, exitUsage, "", "--lab: lab:"},
		{"missing file", []string{"-f", filepath.Join(dir, "nope.yaml")}, exitUsage, "", "nope.yaml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "state")
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, exe, append([]string{"validate", "--state-dir", state}, tc.args...)...)
			cmd.Dir = t.TempDir() // no ./lab.yaml
			cmd.Env = append(os.Environ(), "LABCTL_TEST_AS_CLI=1")
			var out, errOut bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			code := 0
			if err := cmd.Run(); err != nil {
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatal(err)
				}
				code = ee.ExitCode()
			}
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errOut.String())
			}
			if !strings.Contains(out.String(), tc.stdout) || !strings.Contains(errOut.String(), tc.stderr) {
				t.Errorf("stdout %q, stderr %q; want %q, %q", out.String(), errOut.String(), tc.stdout, tc.stderr)
			}
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Errorf("validate touched the state directory (%v)", err)
			}
			if entries, _ := os.ReadDir(cmd.Dir); len(entries) != 0 {
				t.Errorf("validate wrote into its working directory: %v", entries)
			}
		})
	}
}
