package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/labctl/labctl/provision"
	"github.com/spf13/cobra"
)

// versionInfo is `labctl version --json`: what the Go toolchain stamped
// into the binary (module version, and with a build from a git checkout
// the commit, its time and whether the tree had local changes).
type versionInfo struct {
	Schema    int    `json:"schema"`
	Command   string `json:"command"`
	Version   string `json:"version"`            // module version; "(devel)" when built from a checkout without a tag
	Revision  string `json:"revision,omitempty"` // vcs.revision
	Time      string `json:"time,omitempty"`     // vcs.time, RFC 3339
	Modified  bool   `json:"modified"`           // vcs.modified: built from a tree with uncommitted changes
	GoVersion string `json:"go_version"`
	Platform  string `json:"platform"` // GOOS/GOARCH
}

func buildVersion(bi *debug.BuildInfo, ok bool) versionInfo {
	v := versionInfo{Schema: provision.SchemaVersion, Command: "version", Version: "unknown",
		GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if !ok || bi == nil {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}

// String is the one human line, also what --version prints.
func (v versionInfo) String() string {
	var extra []string
	if v.Revision != "" {
		rev := v.Revision
		if len(rev) > 12 {
			rev = rev[:12]
		}
		extra = append(extra, rev)
	}
	if v.Time != "" {
		extra = append(extra, v.Time)
	}
	if v.Modified {
		extra = append(extra, "modified")
	}
	s := "labctl " + v.Version
	if len(extra) > 0 {
		s += " (" + strings.Join(extra, ", ") + ")"
	}
	return s + " " + v.GoVersion + " " + v.Platform
}

func thisVersion() versionInfo { return buildVersion(debug.ReadBuildInfo()) }

func newVersionCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print labctl's version: module version, commit, commit time, local changes, Go version",
		Example: `  labctl version
  labctl --version
  labctl version --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			v := thisVersion()
			if a.jsonOut {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			_, err := fmt.Fprintln(cmd.OutOrStdout(), v)
			return err
		},
	}
	cmd.Flags().BoolVar(&a.jsonOut, "json", false, "print the version as JSON (schema 1) on stdout")
	return cmd
}
