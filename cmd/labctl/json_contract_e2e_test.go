package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labctl/labctl/internal/labtest"
)

// Issue 12 "Done when": every verb with --json, against the sim, prints
// exactly one document on stdout that docs/schema/ accepts. Human lines
// (try:, "destroyed", "wrote") are not on stdout.
func TestJSONContract(t *testing.T) {
	t.Parallel()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	l := labtest.New(t, "lj", exe, "LABCTL_TEST_AS_CLI=1")
	// Two guests, so that with one destroyed check still has one to probe
	// and reports the other as a failed case.
	spec := fastSpec(t, "guests:\n  replicas: 2\n")
	xen := fastSpec(t, "guests:\n  runtime: xen\n")
	dir := t.TempDir()
	sim := []string{"--target", "sim", "-f", spec}
	tests := []struct {
		name string
		args []string
		kind string
		code int      // the exit code expected
		want []string // fragments the document holds (not the schema's job)
	}{
		{"init", []string{"init", "-f", filepath.Join(dir, "lab.yaml")}, "init", 0, []string{`"path": "` + filepath.Join(dir, "lab.yaml")}},
		{"version", []string{"version"}, "version", 0, []string{`"command": "version"`, `"go_version": "go`}},
		{"sim up", []string{"sim", "up", "-f", spec}, "sim-up", 0, []string{`"dom0_netns": "` + l.Dom0NS()}},
		{"status before provision", append([]string{"status"}, sim...), "result", exitDrift, []string{`"error": "not provisioned"`}},
		{"provision --plan", append([]string{"provision", "--plan"}, sim...), "result", 0, []string{`"plan": true`}},
		{"provision", append([]string{"provision"}, sim...), "result", 0, []string{`"changed": true`}},
		{"users list", []string{"users", "list", "-f", spec}, "users-list", 0, []string{`"users": []`}},
		{"deploy", append([]string{"deploy"}, sim...), "result", 0, []string{`"step": "guest:auth-1"`, `"step": "pins"`, `"step": "prune"`, `"host_probe": "ok"`}},
		{"users list after deploy", []string{"users", "list", "-f", spec}, "users-list", 0, []string{`"john"`}},
		{"status", append([]string{"status"}, sim...), "result", 0, []string{`"state": "running"`}},
		{"check", append([]string{"check"}, sim...), "check", 0, []string{`"name": "auth-1"`, `"elapsed_ms"`, `"cases"`}},
		{"logs", []string{"logs", "auth-1", "-f", spec}, "logs", 0, []string{`"guest": "auth-1"`, `"log": "`}},
		{"trace", append([]string{"trace", "auth-1"}, sim...), "trace", 0, []string{`"guest": "auth-1"`, `"id": "http"`}},
		{"doctor", append([]string{"doctor"}, sim...), "doctor", 0, []string{`"findings"`}},
		{"bundle", append([]string{"bundle", "-o", filepath.Join(dir, "b.tar.gz")}, sim...), "bundle", 0, []string{`"path"`}},
		{"destroy", append([]string{"destroy", "auth-2"}, sim...), "result", 0, []string{`"command": "destroy"`}},
		{"check with auth-2 destroyed", append([]string{"check"}, sim...), "check", exitFail, []string{`"name": "running"`, `"ok": false`}},
		{"up", append([]string{"up"}, sim...), "up", 0, []string{`"command": "up"`, `"deploy": {`, `"check": {`}},
		{"teardown", append([]string{"teardown"}, sim...), "result", 0, []string{`"step": "undo:`}},
		{"down", append([]string{"down"}, sim...), "down", 0, []string{`"kept_users": false`, `"removed_users": [`, `"john"`}},
		{"sim up again", []string{"sim", "up", "-f", spec}, "sim-up", 0, nil},
		// The xen runtime where there is no Xen: the plan lists every
		// command (xen_plans, items with ">="), and up fails in deploy's
		// preflight, so its document has ok false and no check.
		{"deploy --plan, xen", []string{"deploy", "--plan", "--target", "sim", "-f", xen}, "result", 0, []string{`"xen_plans"`, `"step": "xen"`, `">= `}},
		{"up failing", []string{"up", "--target", "sim", "-f", xen}, "up", exitFail, []string{`"ok": false`, `"check": null`}},
		{"sim down", []string{"sim", "down", "-f", spec}, "down", 0, []string{`"command": "sim down"`, `"removed_users": []`}},
	}
	ran := map[string]bool{}
	for _, tt := range tests {
		// Steps, not subtests to pick from: each builds on the last.
		out, errOut, code := l.Run(append(tt.args, "--json")...)
		verb := jsonVerb(tt.args)
		if jsonVerbs[verb] != tt.kind {
			t.Fatalf("%s: %s prints %q documents (jsonVerbs), the case says %q", tt.name, verb, jsonVerbs[verb], tt.kind)
		}
		ran[verb] = true
		if code != tt.code {
			t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", tt.name, code, tt.code, out, errOut)
		}
		if err := validateDocument(loadSchemas(t), tt.kind, out); err != nil {
			t.Fatalf("%s: %v\nstdout:\n%s\nstderr:\n%s", tt.name, err, out, errOut)
		}
		for _, w := range tt.want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: stdout lacks %s:\n%s", tt.name, w, out)
			}
		}
		if strings.Contains(out, "try:") {
			t.Errorf("%s: human lines on stdout:\n%s", tt.name, out)
		}
	}
	// The bundle holds status --json and doctor --json: the same documents.
	files, _ := readBundle(t, filepath.Join(dir, "b.tar.gz"))
	for name, kind := range map[string]string{"status.json": "result", "doctor.json": "doctor"} {
		if err := validateDocument(loadSchemas(t), kind, files[name]); err != nil {
			t.Errorf("bundle's %s: %v\n%s", name, err, files[name])
		}
	}
	for verb := range jsonVerbs {
		if !ran[verb] {
			t.Errorf("%s --json: not run by this test", verb)
		}
	}
}

// jsonVerb is the verb of a labctl command line: "users list", "check".
func jsonVerb(args []string) string {
	if len(args) > 1 && (args[0] == "sim" || args[0] == "users") {
		return args[0] + " " + args[1]
	}
	return args[0]
}
