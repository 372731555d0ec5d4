package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/labctl/labctl/provision"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/spf13/cobra"
)

// The --json contract (issue 12 items 2 and 3): every document labctl
// prints is checked against the JSON Schema files in docs/schema/, which
// refuse unknown fields (additionalProperties: false) and missing ones
// (required).

const schemaDir = "../../docs/schema"

// jsonVerbs is every verb that takes --json and the docs/schema file
// (without .schema.json) its document follows. TestJSONVerbsCovered
// keeps it equal to the command tree; TestJSONContract runs each.
var jsonVerbs = map[string]string{
	"init":       "init",
	"sim up":     "sim-up",
	"sim down":   "down",
	"provision":  "result",
	"status":     "result",
	"teardown":   "result",
	"deploy":     "result",
	"destroy":    "result",
	"check":      "check",
	"up":         "up",
	"down":       "down",
	"users list": "users-list",
	"doctor":     "doctor",
	"trace":      "trace",
	"bundle":     "bundle",
	"logs":       "logs",
	"version":    "version",
}

var (
	schemasOnce sync.Once
	schemas     map[string]*jsonschema.Schema
	schemasErr  error
)

// loadSchemas compiles every docs/schema file. Each is registered under
// its $id first, so the files' references to each other (up's deploy is a
// result) resolve to the files here, never to the network.
func loadSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	schemasOnce.Do(func() {
		files, err := filepath.Glob(filepath.Join(schemaDir, "*.schema.json"))
		if err != nil || len(files) == 0 {
			schemasErr = fmt.Errorf("docs/schema: no *.schema.json (%v)", err)
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		ids := map[string]string{}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil {
				schemasErr = err
				return
			}
			doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
			if err != nil {
				schemasErr = fmt.Errorf("%s: %w", f, err)
				return
			}
			m, _ := doc.(map[string]any)
			id, _ := m["$id"].(string)
			if id == "" {
				schemasErr = fmt.Errorf("%s: no $id", f)
				return
			}
			if err := c.AddResource(id, doc); err != nil {
				schemasErr = fmt.Errorf("%s: %w", f, err)
				return
			}
			ids[filepath.Base(f)] = id
		}
		schemas = map[string]*jsonschema.Schema{}
		for name, id := range ids {
			s, err := c.Compile(id)
			if err != nil {
				schemasErr = fmt.Errorf("%s: %w", name, err)
				return
			}
			schemas[strings.TrimSuffix(name, ".schema.json")] = s
		}
	})
	if schemasErr != nil {
		t.Fatal(schemasErr)
	}
	return schemas
}

// checkDocument fails unless stdout is exactly one JSON document, with
// schema its first key, no HTML escapes, valid against docs/schema/<kind>.
// It returns the document decoded.
func checkDocument(t *testing.T, kind, stdout string) map[string]any {
	t.Helper()
	if err := validateDocument(loadSchemas(t), kind, stdout); err != nil {
		t.Fatalf("%s document: %v\nstdout:\n%s", kind, err, stdout)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(stdout), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func validateDocument(schemas map[string]*jsonschema.Schema, kind, stdout string) error {
	s, ok := schemas[kind]
	if !ok {
		return fmt.Errorf("no docs/schema/%s.schema.json", kind)
	}
	dec := json.NewDecoder(strings.NewReader(stdout))
	dec.UseNumber() // as jsonschema.UnmarshalJSON decodes: no precision lost
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("stdout is not a JSON document: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("stdout holds more than one JSON document (or trailing text)")
	}
	// The key order is part of the contract: schema first, so a reader
	// can dispatch on it before reading the rest.
	if !strings.HasPrefix(strings.TrimLeft(stdout, " \n"), "{\n  \"schema\": ") {
		return fmt.Errorf("the first key is not schema")
	}
	for _, esc := range []string{`\u003c`, `\u003e`, `\u0026`} {
		if strings.Contains(stdout, esc) {
			return fmt.Errorf("HTML escape %s: write < > & as they are", esc)
		}
	}
	if err := s.Validate(v); err != nil {
		return fmt.Errorf("against docs/schema/%s.schema.json: %w", kind, err)
	}
	return nil
}

// Every verb with a --json flag has a schema and a place in the contract
// test; a new one fails here until it has both.
func TestJSONVerbsCovered(t *testing.T) {
	t.Parallel()
	s := loadSchemas(t)
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.Flags().Lookup("json") != nil {
			verb := strings.TrimPrefix(c.CommandPath(), "labctl ")
			seen[verb] = true
			kind, ok := jsonVerbs[verb]
			if !ok {
				t.Errorf("%s takes --json but is not in jsonVerbs (json_contract_test.go) nor docs/json.md", verb)
			} else if s[kind] == nil {
				t.Errorf("%s: no docs/schema/%s.schema.json", verb, kind)
			}
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(newRoot())
	for verb := range jsonVerbs {
		if !seen[verb] {
			t.Errorf("jsonVerbs lists %s, which takes no --json", verb)
		}
	}
}

// The schemas accept what labctl prints and refuse a document with a
// field too many or too few: a contract test that cannot fail proves
// nothing.
func TestJSONSchemasRefuse(t *testing.T) {
	t.Parallel()
	s := loadSchemas(t)
	good := func(extra string) string {
		return "{\n  \"schema\": 2,\n  \"command\": \"users list\",\n  \"lab\": \"mirage\",\n  \"ok\": true" + extra + "\n}\n"
	}
	tests := []struct {
		name, kind, doc string
		wantErr         bool
	}{
		{"users list", "users-list", good(",\n  \"users\": []"), false},
		{"unknown field", "users-list", good(",\n  \"users\": [],\n  \"extra\": 1"), true},
		{"missing field", "users-list", good(""), true},
		{"null list", "users-list", good(",\n  \"users\": null"), true},
		{"old schema", "users-list", strings.Replace(good(",\n  \"users\": []"), "2", "1", 1), true},
		{"two documents", "users-list", good(",\n  \"users\": []") + good(",\n  \"users\": []"), true},
		{"trailing text", "users-list", good(",\n  \"users\": []") + "try: curl\n", true},
		{"schema not first", "users-list", "{\n  \"command\": \"users list\",\n  \"schema\": 2,\n  \"lab\": \"m\",\n  \"ok\": true,\n  \"users\": []\n}\n", true},
		{"html escape", "users-list", good(",\n  \"users\": [\"\\u003e\"]"), true},
		{"step with a space", "result", resultDoc(t, provision.StepResult{Step: "guest auth-1", Status: "ok", Items: []provision.Item{}}), true},
		{"undocumented step", "result", resultDoc(t, provision.StepResult{Step: "frobnicate", Status: "ok", Items: []provision.Item{}}), true},
		{"guest step", "result", resultDoc(t, provision.StepResult{Step: provision.GuestStep("auth-1"), Status: "ok", Items: []provision.Item{}}), false},
		{"null items", "result", resultDoc(t, provision.StepResult{Step: "undo:dir", Status: "changed"}), true},
		{"guests on status", "result", withGuests(t, "status"), false},
		{"guests on deploy", "result", withGuests(t, "deploy"), false},
		{"guests on provision", "result", withGuests(t, "provision"), true},
		{"guests on teardown", "result", withGuests(t, "teardown"), true},
		{"a runtime's plan on deploy", "result", strings.Replace(withGuests(t, "deploy"), "\n  \"guests\"", "\n  \"xen_plans\": [],\n  \"guests\"", 1), false},
		{"a runtime's plan on status", "result", strings.Replace(withGuests(t, "status"), "\n  \"guests\"", "\n  \"xen_plans\": [],\n  \"guests\"", 1), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := validateDocument(s, tt.kind, tt.doc)
			if (err != nil) != tt.wantErr {
				t.Errorf("validate = %v, want error %v\n%s", err, tt.wantErr, tt.doc)
			}
		})
	}
}

// resultDoc is a status result holding one step, as raw JSON (not
// normalized, so a nil list shows).
func resultDoc(t *testing.T, s provision.StepResult) string {
	t.Helper()
	var b bytes.Buffer
	r := provision.Result{Schema: provision.SchemaVersion, Command: "status", Lab: "mirage", Target: "sim", OK: true, Steps: []provision.StepResult{s}}
	if err := writeJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// withGuests is a result of verb that lists one guest, as raw JSON,
// whatever verb's own result type would allow (the schema decides).
func withGuests(t *testing.T, verb string) string {
	t.Helper()
	var b bytes.Buffer
	r := provision.GuestsResult{Result: provision.Result{Schema: provision.SchemaVersion, Command: verb, Lab: "mirage", Target: "sim", OK: true, Steps: []provision.StepResult{}},
		Guests: []provision.GuestStatus{{Name: "auth-1", MAC: "52:54:00:12:34:56", IP: "192.168.77.3", URL: "http://192.168.77.3:8088/", State: "running", Healthy: true}}}
	if err := writeJSON(&b, r); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// The documents built without a lab (check's failed guest, a teardown's
// undo steps, an empty users list, sim up --sshd, which the contract test
// does not run) match their schema.
func TestJSONDocumentsOffline(t *testing.T) {
	t.Parallel()
	var spec provision.Spec
	spec.Lab, spec.Guests.Name, spec.Guests.Replicas = "mirage", "auth", 2
	_, missing := provision.SplitDeclared(spec, []provision.GuestStatus{{Name: "auth-1", State: "running"}})
	a := &app{target: targetSim, jsonOut: true}
	teardown := normalize(&provision.Result{Schema: provision.SchemaVersion, Command: "teardown", Lab: "mirage", Target: "sim", OK: true,
		Steps: []provision.StepResult{{Step: "undo:dir", Status: "changed", Detail: "dir /x"}}})
	tests := []struct {
		kind string
		doc  any
	}{
		{"check", checker{a}.checkDoc("mirage", missing, false)},
		{"check", checker{a}.checkDoc("mirage", nil, true)},
		{"result", teardown},
		{"up", upDoc{Schema: provision.SchemaVersion, Command: "up", Lab: "mirage", Target: "sim", Sim: a.simInfo(spec),
			Deploy: normalize(&provision.DeployResult{Result: provision.Result{Schema: provision.SchemaVersion, Command: "deploy", Lab: "mirage", Target: "sim"}}), Error: "deploy: failed"}},
		{"users-list", usersDoc{Schema: provision.SchemaVersion, Command: "users list", Lab: "mirage", OK: true, Users: []string{}}},
		{"sim-up", simUpDoc{Schema: provision.SchemaVersion, Command: "sim up", Lab: "mirage", Target: "sim", OK: true, Sim: *a.simInfo(spec),
			SSHD: &sshdDoc{Target: "ssh://root@192.168.77.2:22", PID: 1, Netns: "mirage-dom0", Identity: "/k", KnownHosts: "/kh"}}},
		{"down", downDoc{Schema: provision.SchemaVersion, Command: "sim down", Lab: "mirage", Target: "sim", OK: true, KeptUsers: true, RemovedUsers: []string{}, Left: []string{}}},
	}
	for _, tt := range tests {
		t.Run(tt.kind, func(t *testing.T) {
			var b bytes.Buffer
			if err := writeJSON(&b, tt.doc); err != nil {
				t.Fatal(err)
			}
			checkDocument(t, tt.kind, b.String())
		})
	}
}

// logs --follow is a stream, not one document: asking for both is bad
// usage (exit 2), refused before any lab is looked at.
func TestLogsJSONFollowRefused(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		args     []string
		wantCode int
	}{
		{"json and follow", []string{"logs", "auth-1", "--json", "--follow"}, exitUsage},
		{"json and -F", []string{"logs", "auth-1", "-F", "--json"}, exitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot()
			root.SetArgs(append(tt.args, "--state-dir", t.TempDir()))
			root.SetOut(io.Discard)
			root.SetErr(io.Discard)
			err := root.Execute()
			var ee *exitError
			if !errors.As(err, &ee) || ee.code != tt.wantCode || !strings.Contains(err.Error(), "--follow") {
				t.Fatalf("labctl %v = %v, want exit %d naming --follow", tt.args, err, tt.wantCode)
			}
		})
	}
}
