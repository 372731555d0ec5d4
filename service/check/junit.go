package check

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// JUnit XML, the subset CI systems read: one testsuite per guest, one
// testcase per case; a <failure> for a case the guest answered wrongly,
// an <error> for one it did not answer at all. A guest that answered no
// case is one <error> testcase, not one per case with the same error
// repeated (issue 12 item 5).
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
	Errors   int          `xml:"errors,attr"`
	Time     string       `xml:"time,attr"`
	Suites   []junitSuite `xml:"testsuite"`
}

type junitSuite struct {
	Name       string          `xml:"name,attr"`
	Tests      int             `xml:"tests,attr"`
	Failures   int             `xml:"failures,attr"`
	Errors     int             `xml:"errors,attr"`
	Time       string          `xml:"time,attr"`
	Timestamp  string          `xml:"timestamp,attr,omitempty"`
	Properties []junitProperty `xml:"properties>property,omitempty"`
	Cases      []junitCase     `xml:"testcase"`
}

type junitProperty struct {
	Name  string `xml:"name,attr"`
	Value string `xml:"value,attr"`
}

type junitCase struct {
	Name      string        `xml:"name,attr"`
	Classname string        `xml:"classname,attr"`
	Time      string        `xml:"time,attr"`
	Failure   *junitFailure `xml:"failure,omitempty"`
	Error     *junitFailure `xml:"error,omitempty"`
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func seconds(msec float64) string { return strconv.FormatFloat(msec/1000, 'f', 3, 64) }

// noAnswer reports whether res failed because the request got no answer
// (runCase's "error: …"), as opposed to a wrong answer or a result
// another check made (a declared guest not running: a failure).
func noAnswer(res Result) bool {
	return !res.Pass && res.Error != "" && res.Got == "error: "+res.Error
}

// unreachable reports whether the guest answered none of its cases.
func unreachable(r Report) bool {
	if len(r.Results) < 2 {
		return false // nothing to fold
	}
	for _, res := range r.Results {
		if !noAnswer(res) {
			return false
		}
	}
	return true
}

// WriteJUnit writes reports as JUnit XML.
func WriteJUnit(w io.Writer, reports []Report) error {
	out := junitSuites{Name: "labctl check"}
	var total float64
	for _, r := range reports {
		s := junitSuite{
			Name:       r.Guest,
			Time:       seconds(r.DurationMS),
			Properties: []junitProperty{{Name: "url", Value: r.URL}},
		}
		if !r.Started.IsZero() {
			s.Timestamp = r.Started.UTC().Format(time.RFC3339)
		}
		class := "labctl.check." + r.Guest
		if unreachable(r) {
			s.Cases = []junitCase{{Name: "reachable", Classname: class, Time: seconds(r.DurationMS), Error: unreachableError(r)}}
		} else {
			for _, res := range r.Results {
				s.Cases = append(s.Cases, junitCaseOf(class, res))
			}
		}
		for _, c := range s.Cases {
			s.Tests++
			if c.Failure != nil {
				s.Failures++
			}
			if c.Error != nil {
				s.Errors++
			}
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		out.Errors += s.Errors
		total += r.DurationMS
		out.Suites = append(out.Suites, s)
	}
	out.Time = seconds(total)
	return encodeJUnit(w, out)
}

// junitCaseOf is one case: passed, a <failure> for a wrong answer (or
// another check's failed result), an <error> for no answer.
func junitCaseOf(class string, res Result) junitCase {
	c := junitCase{Name: res.Name, Classname: class, Time: seconds(res.DurationMS)}
	switch {
	case res.Pass:
	case noAnswer(res):
		c.Error = &junitFailure{
			Message: fmt.Sprintf("%s: no answer: %s", res.Name, res.Error),
			Type:    "error",
			Text:    fmt.Sprintf("request: %s\nexpected: %s\nerror: %s\n", res.Request, res.Expected, res.Error),
		}
	default:
		typ := "mismatch"
		if res.Error != "" {
			typ = "error"
		}
		c.Failure = &junitFailure{
			Message: fmt.Sprintf("%s: got %s, want %s", res.Name, res.Got, res.Expected),
			Type:    typ,
			Text:    fmt.Sprintf("request: %s\nexpected: %s\ngot: %s\n", res.Request, res.Expected, res.Got),
		}
	}
	return c
}

// unreachableError is the one <error> of a guest that answered no case:
// the error once (each one that differs, if they do) and the cases it
// kept from running.
func unreachableError(r Report) *junitFailure {
	var errs, names []string
	seen := map[string]bool{}
	for _, res := range r.Results {
		names = append(names, res.Name)
		if !seen[res.Error] {
			seen[res.Error] = true
			errs = append(errs, res.Error)
		}
	}
	return &junitFailure{
		Message: fmt.Sprintf("guest %s answered none of %d cases: %s", r.Guest, len(r.Results), strings.Join(errs, "; ")),
		Type:    "unreachable",
		Text:    fmt.Sprintf("url: %s\nerror: %s\ncases without an answer: %s\n", r.URL, strings.Join(errs, "\nerror: "), strings.Join(names, ", ")),
	}
}

// WriteJUnitAbort writes the JUnit XML of a check that could not run
// (the lab is not up, has no guests, …): one testcase whose <error> is
// why, so CI shows red instead of "no test results".
func WriteJUnitAbort(w io.Writer, lab string, cause error) error {
	msg := "check aborted"
	if cause != nil && cause.Error() != "" {
		msg = cause.Error()
	}
	name := "labctl check"
	if lab != "" {
		name += " " + lab
	}
	return encodeJUnit(w, junitSuites{Name: "labctl check", Tests: 1, Errors: 1, Time: seconds(0), Suites: []junitSuite{{
		Name: name, Tests: 1, Errors: 1, Time: seconds(0),
		Cases: []junitCase{{Name: "check", Classname: "labctl.check", Time: seconds(0),
			Error: &junitFailure{Message: msg, Type: "abort", Text: msg + "\n"}}},
	}}})
}

func encodeJUnit(w io.Writer, out junitSuites) error {
	if _, err := io.WriteString(w, xml.Header); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	enc := xml.NewEncoder(w)
	enc.Indent("", "  ")
	if err := enc.Encode(out); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	if _, err := io.WriteString(w, "\n"); err != nil {
		return fmt.Errorf("junit: %w", err)
	}
	return nil
}
