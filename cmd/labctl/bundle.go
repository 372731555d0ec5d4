package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/labctl/labctl/bundle"
	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/graph"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/vmctl"
	"github.com/spf13/cobra"
)

func newBundleCmd(a *app) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "bundle",
		Short: "Write the evidence bundle (.tar.gz): spec, journal, dnsmasq, consoles, every namespace's ip and iptables, status, doctor, graph, versions; no secrets",
		Long: `bundle collects what someone debugging the lab asks for into one .tar.gz;
MANIFEST.txt inside lists each file and why any is missing. Password
hashes and private keys are never read, and any line that holds one is
withheld. The file list: docs/observe.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			if out == "" {
				out = fmt.Sprintf("labctl-bundle-%s-%s.tar.gz", spec.Lab, time.Now().UTC().Format("20060102T150405Z"))
			}
			if err := a.writeBundle(cmd, spec, out); err != nil {
				return &exitError{exitFail, err}
			}
			if a.jsonOut {
				return writeJSON(cmd.OutOrStdout(), bundleDoc{Schema: provision.SchemaVersion, Command: "bundle", Lab: spec.Lab, Target: a.target, OK: true, Path: out})
			}
			fmt.Fprintln(cmd.OutOrStdout(), out)
			return nil
		},
	}
	addTargetFlags(cmd, a)
	addJSONFlag(cmd, a)
	cmd.Flags().StringVarP(&out, "output", "o", "", "FILE.tar.gz to write (default: labctl-bundle-LAB-TIME.tar.gz here)")
	return cmd
}

// addBundleOnFailure gives cmd --bundle-on-failure DIR: when the command
// fails (not on bad usage), a bundle is written to DIR before the error
// is returned. Without the flag, $LABCTL_BUNDLE_ON_FAILURE (a directory,
// or "off"), else CI=true, which means ./labctl-bundles.
func addBundleOnFailure(cmd *cobra.Command, a *app) {
	var dir string
	cmd.Flags().StringVar(&dir, "bundle-on-failure", "", "on failure, write an evidence bundle into DIR ($LABCTL_BUNDLE_ON_FAILURE: DIR or off; CI=true: ./labctl-bundles)")
	run := cmd.RunE
	cmd.RunE = func(c *cobra.Command, args []string) error {
		err := run(c, args)
		var ee *exitError
		if err == nil || (errors.As(err, &ee) && ee.code == exitUsage) {
			return err
		}
		d := bundleDir(dir)
		if d == "" {
			return err
		}
		spec, serr := a.loadSpec()
		if serr != nil {
			return err
		}
		if merr := os.MkdirAll(d, 0o755); merr != nil {
			a.log.Error("no evidence bundle", "dir", d, "err", merr)
			return err
		}
		p := filepath.Join(d, fmt.Sprintf("labctl-bundle-%s-%s-%s.tar.gz", spec.Lab, c.Name(), time.Now().UTC().Format("20060102T150405Z")))
		if berr := a.writeBundle(c, spec, p); berr != nil {
			a.log.Error("no evidence bundle", "file", p, "err", berr)
		} else {
			a.log.Warn("wrote the evidence bundle", "file", p)
		}
		return err
	}
}

// bundleDir is where a failing command puts its bundle ("" for none).
func bundleDir(flag string) string {
	if flag != "" {
		return flag
	}
	switch env := os.Getenv("LABCTL_BUNDLE_ON_FAILURE"); {
	case env == "off":
		return ""
	case env != "":
		return env
	case os.Getenv("CI") == "true":
		return "labctl-bundles"
	}
	return ""
}

// writeBundle observes the lab (status, doctor, graph) and writes the
// bundle to file.
func (a *app) writeBundle(cmd *cobra.Command, spec provision.Spec, file string) error {
	ctx := cmd.Context()
	in, closeFn, err := a.bundleInput(cmd, spec)
	if err != nil {
		return err
	}
	defer closeFn()
	tmp := file + ".part"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("bundle %s: %w", file, err)
	}
	entries, err := bundle.Write(ctx, f, in)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("bundle %s: %w", file, err)
	}
	missing := 0
	for _, e := range entries {
		if e.Missing != "" {
			missing++
		}
	}
	a.log.Info("bundle", "file", file, "files", len(entries)-missing, "missing", missing)
	return os.Rename(tmp, file)
}

// labNetns matches the sim's namespaces of one lab (vmctl.SimNames,
// vmctl.GuestNetns): <lab>-host, -dom0, -wan, -g<N>.
func labNetns(lab string) *regexp.Regexp {
	return regexp.MustCompile(`^` + regexp.QuoteMeta(lab) + `-(host|dom0|wan|g[0-9]+)$`)
}

func (a *app) bundleInput(cmd *cobra.Command, spec provision.Spec) (bundle.Input, func(), error) {
	o := diagnosis{a}.observe(cmd, spec)
	reports := map[string][]byte{}
	// The same documents status --json and doctor --json print
	// (docs/json.md), so the bundle's files validate against docs/schema.
	var st bytes.Buffer
	if err := writeJSON(&st, normalize(&o.status)); err == nil {
		if o.statusErr != nil {
			reports["status.error.txt"] = []byte(o.statusErr.Error() + "\n")
		}
		reports["status.json"] = st.Bytes()
	}
	findings := o.findings
	if findings == nil {
		findings = []doctor.Finding{}
	}
	var doc bytes.Buffer
	if err := writeJSON(&doc, doctorReport{Schema: provision.SchemaVersion, Command: "doctor", Lab: spec.Lab, Target: a.target,
		OK: doctor.Worst(findings) != doctor.StatusFail, Findings: findings}); err == nil {
		reports["doctor.json"] = doc.Bytes()
	}
	var svg bytes.Buffer
	if err := graph.WriteSVG(cmd.Context(), &svg, graph.Build(o.graphInput(spec, a.target))); err != nil {
		reports["graph.error.txt"] = []byte(err.Error() + "\n")
	} else {
		reports["graph.svg"] = svg.Bytes()
	}
	reports["versions-labctl.txt"] = labctlVersion()
	specYAML := spec.YAML()

	in := bundle.Input{Lab: spec.Lab, Spec: specYAML, Host: vmctl.Local{}, Tools: bundle.DefaultTools, Reports: reports, Log: a.log}
	for _, g := range o.status.Guests {
		in.Guests = append(in.Guests, g.Name)
	}
	c, err := a.openDom0(cmd.Context(), spec)
	if err != nil {
		// dom0 unreachable: still bundle what the host has.
		reports["dom0.error.txt"] = []byte(err.Error() + "\n")
		in.Places = []bundle.Place{{Name: "host", T: vmctl.Local{}}}
		return in, func() {}, nil
	}
	in.Dom0 = c.t
	if in.Dom0 == nil {
		in.Dom0 = vmctl.Local{}
	}
	in.StateDir = provision.StateDir(c.stateRoot, spec.Lab)
	if a.target == targetSim {
		re := labNetns(spec.Lab)
		ents, _ := os.ReadDir("/run/netns")
		for _, e := range ents {
			if re.MatchString(e.Name()) {
				in.Places = append(in.Places, bundle.Place{Name: e.Name(), T: vmctl.Netns{Name: e.Name()}})
			}
		}
	} else {
		in.Places = []bundle.Place{{Name: "dom0", T: in.Dom0}}
		if c.t != nil {
			in.Places = append(in.Places, bundle.Place{Name: "host", T: vmctl.Local{}})
		}
	}
	return in, func() { c.Close() }, nil
}

// labctlVersion is this binary's build information.
func labctlVersion() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "== labctl\n%s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if bi, ok := debug.ReadBuildInfo(); ok {
		fmt.Fprintf(&b, "module %s %s\n", bi.Main.Path, bi.Main.Version)
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" || s.Key == "vcs.time" {
				fmt.Fprintf(&b, "%s=%s\n", s.Key, s.Value)
			}
		}
		for _, d := range bi.Deps {
			fmt.Fprintf(&b, "dep %s %s\n", d.Path, d.Version)
		}
	}
	return b.Bytes()
}
