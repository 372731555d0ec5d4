package main

import (
	"encoding/json"
	"io"

	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/service/check"
	"github.com/spf13/cobra"
)

// The --json documents (docs/json.md, one JSON Schema each in
// docs/schema/). Every document is a struct, not a map, so its keys come
// out in a fixed order with schema and command first.

// addJSONFlag gives cmd --json. Only verbs that print a document take it:
// a flag that is accepted and ignored is a broken promise to a pipeline.
func addJSONFlag(cmd *cobra.Command, a *app) {
	cmd.Flags().BoolVar(&a.jsonOut, "json", false, "print one JSON document on stdout (schema 2, docs/json.md); logs stay on stderr")
}

// writeJSON writes v as the command's one document. No HTML escaping: a
// consumer reads ">= 2.80", not "\u003e= 2.80".
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// normalize gives a result the shape docs/schema promises: lists are []
// and never null (a teardown's undo steps check no items).
func normalize[O provision.Outcome](o O) O {
	r := o.Head()
	if r.Steps == nil {
		r.Steps = []provision.StepResult{}
	}
	steps := make([]provision.StepResult, len(r.Steps))
	for i, s := range r.Steps {
		if s.Items == nil {
			s.Items = []provision.Item{}
		}
		steps[i] = s
	}
	r.Steps = steps
	return o
}

// checkDoc is `check --json`, and up's "check".
type checkDoc struct {
	Schema  int            `json:"schema"`
	Command string         `json:"command"`
	Lab     string         `json:"lab"`
	Target  string         `json:"target"`
	OK      bool           `json:"ok"`
	Guests  []check.Report `json:"guests"`
}

func (a checker) checkDoc(lab string, reports []check.Report, ok bool) checkDoc {
	if reports == nil {
		reports = []check.Report{}
	}
	for i := range reports {
		if reports[i].Results == nil {
			reports[i].Results = []check.Result{}
		}
	}
	return checkDoc{Schema: provision.SchemaVersion, Command: "check", Lab: lab, Target: a.target, OK: ok, Guests: reports}
}

// upDoc is `up --json`: the deploy (which converges dom0's network first)
// and the check that followed it, each the document its own verb prints.
// check is null when the deploy failed and nothing was checked.
type upDoc struct {
	Schema  int                     `json:"schema"`
	Command string                  `json:"command"`
	Lab     string                  `json:"lab"`
	Target  string                  `json:"target"`
	OK      bool                    `json:"ok"`
	Error   string                  `json:"error,omitempty"`
	Sim     *provision.SimInfo      `json:"sim"`
	Deploy  *provision.DeployResult `json:"deploy"`
	Check   *checkDoc               `json:"check"`
}

// downDoc is `down --json` and `sim down --json`.
type downDoc struct {
	Schema  int    `json:"schema"`
	Command string `json:"command"`
	Lab     string `json:"lab"`
	Target  string `json:"target"`
	OK      bool   `json:"ok"`
	// KeptUsers: the lab's users directory stayed (sim down keeps it).
	KeptUsers bool `json:"kept_users"`
	// RemovedUsers: the users that went with the lab (down), by name.
	RemovedUsers []string `json:"removed_users"`
	// Left: paths in the state directory that were not labctl's, left
	// where they are.
	Left []string `json:"left"`
}

// simUpDoc is `sim up --json`.
type simUpDoc struct {
	Schema      int               `json:"schema"`
	Command     string            `json:"command"`
	Lab         string            `json:"lab"`
	Target      string            `json:"target"`
	OK          bool              `json:"ok"`
	Sim         provision.SimInfo `json:"sim"`
	HostIf      string            `json:"host_if"`
	HostAddress string            `json:"host_address"`
	Uplink      string            `json:"uplink"`
	Dom0Address string            `json:"dom0_address"`
	SSHD        *sshdDoc          `json:"sshd,omitempty"`
}

// sshdDoc is the simulated dom0's sshd (sim up --sshd).
type sshdDoc struct {
	Target     string `json:"target"`
	PID        int    `json:"pid"`
	Netns      string `json:"netns"`
	Identity   string `json:"identity"`
	KnownHosts string `json:"known_hosts"`
}

// usersDoc is `users list --json`.
type usersDoc struct {
	Schema  int      `json:"schema"`
	Command string   `json:"command"`
	Lab     string   `json:"lab"`
	OK      bool     `json:"ok"`
	Users   []string `json:"users"`
}

// initDoc is `init --json`.
type initDoc struct {
	Schema  int    `json:"schema"`
	Command string `json:"command"`
	OK      bool   `json:"ok"`
	Path    string `json:"path"`
}

// bundleDoc is `bundle --json`.
type bundleDoc struct {
	Schema  int    `json:"schema"`
	Command string `json:"command"`
	Lab     string `json:"lab"`
	Target  string `json:"target"`
	OK      bool   `json:"ok"`
	Path    string `json:"path"`
}

// logsDoc is `logs GUEST --json` (not with --follow: a stream is not one
// document). Log is the console log as written, invalid UTF-8 replaced.
type logsDoc struct {
	Schema  int    `json:"schema"`
	Command string `json:"command"`
	Lab     string `json:"lab"`
	OK      bool   `json:"ok"`
	Guest   string `json:"guest"`
	Path    string `json:"path"`
	Log     string `json:"log"`
}
