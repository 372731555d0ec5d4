package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/labctl/labctl/provision"
)

func TestBuildVersion(t *testing.T) {
	t.Parallel()
	platform := runtime.GOOS + "/" + runtime.GOARCH
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		want versionInfo
		line string
	}{
		{"no build info", nil, versionInfo{Version: "unknown", GoVersion: runtime.Version()},
			"labctl unknown " + runtime.Version() + " " + platform},
		{"release", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}, {Key: "vcs.modified", Value: "false"}}},
			versionInfo{Version: "v1.2.3", Revision: "0123456789abcdef0123", Time: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8"},
			"labctl v1.2.3 (0123456789ab, 2026-12-01T10:00:00Z) go1.26.8 " + platform},
		{"modified checkout", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc"}, {Key: "vcs.modified", Value: "true"}}},
			versionInfo{Version: "(devel)", Revision: "abc", Modified: true, GoVersion: "go1.26.8"},
			"labctl (devel) (abc, modified) go1.26.8 " + platform},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := buildVersion(tc.bi, tc.bi != nil)
			tc.want.Schema, tc.want.Command, tc.want.Platform = provision.SchemaVersion, "version", platform
			if got != tc.want {
				t.Errorf("buildVersion = %+v\n          want %+v", got, tc.want)
			}
			if got.String() != tc.line {
				t.Errorf("line %q, want %q", got.String(), tc.line)
			}
		})
	}
}

// `labctl version`, `labctl --version` and `labctl version --json` say
// the same thing; the JSON document starts with its schema.
func TestVersionCommand(t *testing.T) {
	t.Parallel()
	run := func(args ...string) string {
		t.Helper()
		root := newRoot()
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs(args)
		if err := root.ExecuteContext(context.Background()); err != nil {
			t.Fatalf("labctl %v: %v", args, err)
		}
		return out.String()
	}
	want := thisVersion().String() + "\n"
	for _, args := range [][]string{{"version"}, {"--version"}} {
		if got := run(args...); got != want {
			t.Errorf("labctl %v = %q, want %q", args, got, want)
		}
	}
	js := run("version", "--json")
	if !strings.HasPrefix(js, fmt.Sprintf("{\n  \"schema\": %d,", provision.SchemaVersion)) {
		t.Errorf("version --json does not start with its schema:\n%s", js)
	}
	var v versionInfo
	dec := json.NewDecoder(strings.NewReader(js))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil || v != thisVersion() {
		t.Errorf("version --json = %+v, %v; want %+v", v, err, thisVersion())
	}
}
