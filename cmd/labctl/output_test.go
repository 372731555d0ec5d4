package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/labctl/labctl/provision"
)

// The default table is one line per step; an item not as desired is
// spelled out under the table; -o wide is every item.
func TestOutputSummaryAndWide(t *testing.T) {
	t.Parallel()
	r := &provision.Result{Command: "provision", Lab: "ux", Steps: []provision.StepResult{
		{Step: "bridge", Status: provision.StatusOK, Items: []provision.Item{{Name: "br0", Desired: "up", Observed: "up", OK: true}, {Name: "br0 mac", Desired: "m", Observed: "m", OK: true}}},
		{Step: "nat", Status: provision.StatusFailed, Error: "iptables-restore: exit 1", Items: []provision.Item{{Name: "LABCTL-POST", Desired: "present", Observed: "absent"}}},
		{Step: "xen", Status: provision.StatusOK, Items: []provision.Item{{Name: "xl", Desired: "ok", Observed: "fail: xl not found (fix: install xen-utils)", OK: true}}},
	}}
	for _, tc := range []struct {
		mode       outputMode
		want, none []string
	}{
		{"summary", []string{"bridge  ok", "2 as desired", "1 of 1 differ", "nat: LABCTL-POST: want present, have absent", "nat: error: iptables-restore: exit 1", "xen: xl: fail: xl not found (fix: install xen-utils)"}, []string{"DESIRED", "br0 mac"}},
		{"wide", []string{"DESIRED", "br0 mac", "LABCTL-POST"}, []string{"as desired"}},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			a := &app{output: tc.mode}
			var b bytes.Buffer
			if err := a.printResult(&b, r); err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(b.String(), w) {
					t.Errorf("lacks %q:\n%s", w, b.String())
				}
			}
			for _, w := range tc.none {
				if strings.Contains(b.String(), w) {
					t.Errorf("holds %q:\n%s", w, b.String())
				}
			}
		})
	}
	var m outputMode
	if err := m.Set("yaml"); err == nil || !strings.Contains(err.Error(), "summary or wide") {
		t.Errorf("Set(yaml) = %v, want an error naming the values", err)
	}
}
