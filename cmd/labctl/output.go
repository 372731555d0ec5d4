package main

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/labctl/labctl/provision"
	"github.com/spf13/cobra"
)

// outputMode is -o/--output of the verbs that print a step table:
// "summary" (the default: one line per step, problems expanded) or
// "wide" (every item desired vs observed, the table labctl used to print
// by default). As kubectl's -o wide: the default fits a terminal.
type outputMode string

func (m *outputMode) String() string { return string(*m) }
func (m *outputMode) Type() string   { return "summary|wide" }
func (m *outputMode) Set(s string) error {
	switch s {
	case "summary", "wide":
		*m = outputMode(s)
		return nil
	}
	return fmt.Errorf("expected summary or wide, got %q (--json prints the document)", s)
}

func addOutputFlag(cmd *cobra.Command, a *app) {
	a.output = "summary"
	cmd.Flags().VarP(&a.output, "output", "o", "summary: one line per step, problems expanded; wide: every item desired vs observed")
}

// printStepSummary is the default table: one line per step with its
// items counted, and each item that is not as desired on a line of its
// own under its step (a failing step's error too).
func printStepSummary(w io.Writer, r *provision.Result) {
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATUS\tITEMS\tTIME")
	var problems []string
	for _, s := range r.Steps {
		bad := 0
		for _, it := range s.Items {
			if !it.OK || tolerated(it) {
				bad++
			}
		}
		items := fmt.Sprintf("%d as desired", len(s.Items))
		if bad > 0 {
			items = fmt.Sprintf("%d of %d differ", bad, len(s.Items))
		}
		if len(s.Items) == 0 {
			items = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f ms\n", s.Step, s.Status, items, s.ElapsedMS)
		if bad == 0 && s.Error == "" {
			continue
		}
		// Problems are written after the table, so the columns stay
		// narrow; each names its step.
		for _, it := range s.Items {
			if !it.OK || tolerated(it) {
				problems = append(problems, fmt.Sprintf("%s: %s", s.Step, it))
			}
		}
		if s.Error != "" {
			problems = append(problems, fmt.Sprintf("%s: error: %s", s.Step, s.Error))
		}
	}
	tw.Flush()
	if len(problems) > 0 && !(r.Command == "status" && len(r.Drift) > 0) {
		// status lists its drift below (printResult); the rest here.
		fmt.Fprintf(w, "\nnot as desired:\n  %s\n", strings.Join(problems, "\n  "))
	}
}

// tolerated is an item a plan lets pass although its finding failed
// (deploy --runtime xen --plan on a machine without Xen: the plan is
// still printed): the summary must not call it "as desired".
func tolerated(it provision.Item) bool {
	return it.OK && strings.HasPrefix(it.Observed, "fail: ")
}
