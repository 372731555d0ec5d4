package check

import (
	"encoding/xml"
	"fmt"
	"io"
	"strconv"
	"time"
)

// JUnit XML, the subset CI systems read: one testsuite per guest, one
// testcase per case, a <failure> with a message for each failed case.
type junitSuites struct {
	XMLName  xml.Name     `xml:"testsuites"`
	Name     string       `xml:"name,attr"`
	Tests    int          `xml:"tests,attr"`
	Failures int          `xml:"failures,attr"`
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
}

type junitFailure struct {
	Message string `xml:"message,attr"`
	Type    string `xml:"type,attr"`
	Text    string `xml:",chardata"`
}

func seconds(msec float64) string { return strconv.FormatFloat(msec/1000, 'f', 3, 64) }

// WriteJUnit writes reports as JUnit XML.
func WriteJUnit(w io.Writer, reports []Report) error {
	out := junitSuites{Name: "labctl check"}
	var total float64
	for _, r := range reports {
		s := junitSuite{
			Name:       r.Guest,
			Tests:      len(r.Results),
			Failures:   r.Failed,
			Time:       seconds(r.DurationMS),
			Properties: []junitProperty{{Name: "url", Value: r.URL}},
		}
		if !r.Started.IsZero() {
			s.Timestamp = r.Started.UTC().Format(time.RFC3339)
		}
		for _, res := range r.Results {
			c := junitCase{Name: res.Name, Classname: "labctl.check." + r.Guest, Time: seconds(res.DurationMS)}
			if !res.Pass {
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
			s.Cases = append(s.Cases, c)
		}
		out.Tests += s.Tests
		out.Failures += s.Failures
		total += r.DurationMS
		out.Suites = append(out.Suites, s)
	}
	out.Time = seconds(total)
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
