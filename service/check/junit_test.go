package check

import (
	"bytes"
	"encoding/xml"
	"errors"
	"strings"
	"testing"
)

// A guest that answers nothing is one <error>, not 22 copies of the same
// failure; a wrong answer stays a <failure> and one unanswered case among
// answered ones an <error> of its own (issue 12 item 5).
func TestJUnitErrors(t *testing.T) {
	const refused = "dial tcp 192.0.2.3:8088: connect: connection refused"
	dead := Report{Guest: "auth-1", URL: "http://192.0.2.3:8088", Failed: 22}
	for _, c := range ProbeCases("john", "password") {
		dead.Results = append(dead.Results, Result{Name: c.Name, Request: "GET /", Error: refused, Got: "error: " + refused})
	}
	ok := Result{Name: "valid", Pass: true}
	for _, tc := range []struct {
		name                    string
		report                  Report
		tests, failures, errors int
		cases                   []string // testcase names, in order
		want                    string   // in the XML
	}{
		{"dead guest is one error", dead, 1, 0, 1, []string{"reachable"}, "guest auth-1 answered none of 22 cases: " + refused},
		{"one case unanswered", Report{Guest: "auth-1", Results: []Result{ok, {Name: "user-64k", Error: "i/o timeout", Got: "error: i/o timeout"}}},
			2, 0, 1, []string{"valid", "user-64k"}, `<error message="user-64k: no answer: i/o timeout" type="error">`},
		{"wrong answer", Report{Guest: "auth-1", Results: []Result{ok, {Name: "wrong-password", Got: `200 "hello john!\n"`, Expected: `401 "Invalid login\n"`}}},
			2, 1, 0, []string{"valid", "wrong-password"}, `type="mismatch"`},
		{"declared guest not running stays a failure", Report{Guest: "auth-2", Failed: 1, Results: []Result{{Name: "running", Request: "status", Expected: "running", Got: "absent", Error: "guest auth-2 is declared by the spec but absent"}}},
			1, 1, 0, []string{"running"}, "<failure"},
		{"all answered wrongly is not unreachable", Report{Guest: "auth-1", Results: []Result{{Name: "valid", Got: "500"}, {Name: "valid-head", Got: "500"}}},
			2, 2, 0, []string{"valid", "valid-head"}, "<failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteJUnit(&buf, []Report{tc.report}); err != nil {
				t.Fatal(err)
			}
			var got junitSuites
			if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("%v\n%s", err, buf.String())
			}
			if got.Tests != tc.tests || got.Failures != tc.failures || got.Errors != tc.errors {
				t.Errorf("totals: %d tests, %d failures, %d errors; want %d, %d, %d", got.Tests, got.Failures, got.Errors, tc.tests, tc.failures, tc.errors)
			}
			s := got.Suites[0]
			if s.Tests != tc.tests || s.Failures != tc.failures || s.Errors != tc.errors {
				t.Errorf("suite: %d tests, %d failures, %d errors; want %d, %d, %d", s.Tests, s.Failures, s.Errors, tc.tests, tc.failures, tc.errors)
			}
			var names []string
			for _, c := range s.Cases {
				names = append(names, c.Name)
			}
			if strings.Join(names, ",") != strings.Join(tc.cases, ",") {
				t.Errorf("cases %v, want %v", names, tc.cases)
			}
			if !strings.Contains(buf.String(), tc.want) {
				t.Errorf("XML lacks %q:\n%s", tc.want, buf.String())
			}
			// The cause is said once (message and text), not per case.
			if n := strings.Count(buf.String(), refused); n > 2 {
				t.Errorf("the error appears %d times:\n%s", n, buf.String())
			}
		})
	}
}

// A check that could not run still writes a report: CI shows red.
func TestJUnitAbort(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteJUnitAbort(&buf, "ux", errors.New("simulated lab ux is not up")); err != nil {
		t.Fatal(err)
	}
	var got junitSuites
	if err := xml.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatalf("%v\n%s", err, buf.String())
	}
	if got.Tests != 1 || got.Errors != 1 || len(got.Suites) != 1 || len(got.Suites[0].Cases) != 1 {
		t.Fatalf("want one suite with one errored case:\n%s", buf.String())
	}
	e := got.Suites[0].Cases[0].Error
	if e == nil || e.Type != "abort" || e.Message != "simulated lab ux is not up" {
		t.Fatalf("error %+v", e)
	}
}
