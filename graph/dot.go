package graph

import (
	"fmt"
	"io"
	"strings"
)

// Colours: problems in red, everything else in calm greys and blues.
const (
	colorOK       = "#2d3748"
	fillOK        = "#f7fafc"
	fillBridge    = "#ebf4ff"
	fillGuest     = "#f0fff4"
	colorProblem  = "#c53030"
	fillProblem   = "#fff5f5"
	clusterBorder = "#a0aec0"
)

var clusterTitles = map[string]string{"host": "host", "dom0": "dom0 (Xen VM)", "guests": "guests"}

// clusterOrder fixes the order clusters are written in (a stable DOT
// text, so the golden files stay put).
var clusterOrder = []string{"host", "dom0", "guests"}

// WriteDOT writes the graph in Graphviz's DOT language: an undirected
// graph, left to right, one cluster per machine, bridges as nodes.
func WriteDOT(w io.Writer, g Graph) error {
	var b strings.Builder
	title := "lab " + g.Lab
	if g.Target != "" {
		title += " (" + g.Target + ")"
	}
	if n := len(g.Problems); n > 0 {
		title += fmt.Sprintf(" — %d problem(s)", n)
	}
	fmt.Fprintf(&b, "graph %s {\n", dotID("lab "+g.Lab))
	fmt.Fprintf(&b, "  graph [rankdir=LR, fontname=\"Helvetica\", fontsize=14, labelloc=t, label=%s, nodesep=0.3, ranksep=0.5];\n", dotID(title))
	fmt.Fprintf(&b, "  node [shape=box, style=\"rounded,filled\", margin=\"0.3,0.08\", fontname=\"Helvetica\", fontsize=11, color=%q, fillcolor=%q];\n", colorOK, fillOK)
	fmt.Fprintf(&b, "  edge [fontname=\"Helvetica\", fontsize=10, color=%q];\n", colorOK)
	for _, c := range clusterOrder {
		var in []Node
		for _, n := range g.Nodes {
			if n.Cluster == c {
				in = append(in, n)
			}
		}
		if len(in) == 0 {
			continue
		}
		fmt.Fprintf(&b, "  subgraph %s {\n    label=%s; style=\"rounded,dashed\"; color=%q;\n", dotID("cluster_"+c), dotID(clusterTitles[c]), clusterBorder)
		for _, n := range in {
			b.WriteString("    " + dotNode(n) + "\n")
		}
		b.WriteString("  }\n")
	}
	for _, n := range g.Nodes {
		if n.Cluster == "" {
			b.WriteString("  " + dotNode(n) + "\n")
		}
	}
	for _, e := range g.Edges {
		var attrs []string
		if e.Label != "" {
			attrs = append(attrs, "label="+dotID(e.Label))
		}
		if e.Problem {
			attrs = append(attrs, fmt.Sprintf("color=%q", colorProblem), fmt.Sprintf("fontcolor=%q", colorProblem), "penwidth=2")
		}
		a := ""
		if len(attrs) > 0 {
			a = " [" + strings.Join(attrs, ", ") + "]"
		}
		fmt.Fprintf(&b, "  %s -- %s%s;\n", dotID(e.From), dotID(e.To), a)
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func dotNode(n Node) string {
	attrs := []string{"label=" + dotLabel(n.Lines)}
	fill := fillOK
	switch n.Kind {
	case KindBridge:
		attrs = append(attrs, "shape=box3d")
		fill = fillBridge
	case KindGuest:
		fill = fillGuest
	case KindWAN:
		attrs = append(attrs, "shape=ellipse", "style=dashed")
	}
	if n.Problem {
		attrs = append(attrs, fmt.Sprintf("color=%q", colorProblem), fmt.Sprintf("fontcolor=%q", colorProblem), "penwidth=2")
		fill = fillProblem
	}
	if n.Kind != KindWAN {
		attrs = append(attrs, fmt.Sprintf("fillcolor=%q", fill))
	}
	return dotID(n.ID) + " [" + strings.Join(attrs, ", ") + "];"
}

// dotID quotes an ID as a DOT double-quoted string: only " and \ need
// escaping there (graphviz.org/doc/info/lang.html).
func dotID(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(s) + `"`
}

// dotLabel joins lines with \l-free centred breaks (\n).
func dotLabel(lines []string) string { return dotID(strings.Join(lines, "\n")) }
