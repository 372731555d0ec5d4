package graph

import (
	"fmt"
	"io"
	"strings"
)

// WriteMermaid writes the graph as a mermaid flowchart (GitHub renders it
// in Markdown): the same nodes, clusters as subgraphs, problems in the
// "problem" class.
func WriteMermaid(w io.Writer, g Graph) error {
	var b strings.Builder
	b.WriteString("flowchart LR\n")
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
		fmt.Fprintf(&b, "  subgraph %s[%s]\n", mermaidID("cluster_"+c), mermaidText(clusterTitles[c]))
		for _, n := range in {
			b.WriteString("    " + mermaidNode(n) + "\n")
		}
		b.WriteString("  end\n")
	}
	for _, n := range g.Nodes {
		if n.Cluster == "" {
			b.WriteString("  " + mermaidNode(n) + "\n")
		}
	}
	var redEdges []string
	for i, e := range g.Edges {
		if e.Label != "" {
			fmt.Fprintf(&b, "  %s ---|%s| %s\n", mermaidID(e.From), mermaidText(e.Label), mermaidID(e.To))
		} else {
			fmt.Fprintf(&b, "  %s --- %s\n", mermaidID(e.From), mermaidID(e.To))
		}
		if e.Problem {
			redEdges = append(redEdges, fmt.Sprint(i))
		}
	}
	fmt.Fprintf(&b, "  classDef problem fill:%s,stroke:%s,color:%s,stroke-width:2px\n", fillProblem, colorProblem, colorProblem)
	fmt.Fprintf(&b, "  classDef bridge fill:%s,stroke:%s\n", fillBridge, colorOK)
	var red, bridges []string
	for _, n := range g.Nodes {
		switch {
		case n.Problem:
			red = append(red, mermaidID(n.ID))
		case n.Kind == KindBridge:
			bridges = append(bridges, mermaidID(n.ID))
		}
	}
	if len(bridges) > 0 {
		fmt.Fprintf(&b, "  class %s bridge\n", strings.Join(bridges, ","))
	}
	if len(red) > 0 {
		fmt.Fprintf(&b, "  class %s problem\n", strings.Join(red, ","))
	}
	if len(redEdges) > 0 {
		fmt.Fprintf(&b, "  linkStyle %s stroke:%s,stroke-width:2px\n", strings.Join(redEdges, ","), colorProblem)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func mermaidNode(n Node) string {
	open, close := "[", "]"
	switch n.Kind {
	case KindBridge:
		open, close = "[[", "]]"
	case KindWAN:
		open, close = "((", "))"
	}
	return mermaidID(n.ID) + open + mermaidText(strings.Join(n.Lines, "\n")) + close
}

// mermaidID maps a node ID to mermaid's identifier alphabet, one to one.
func mermaidID(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			// _hex keeps distinct IDs distinct (auth-1 vs auth.1).
			fmt.Fprintf(&b, "_%x", r)
		}
	}
	return "n_" + b.String()
}

// mermaidText is a quoted label: mermaid takes entity codes (#quot;) for
// the characters its syntax uses, and <br/> for a line break.
func mermaidText(s string) string {
	r := strings.NewReplacer(`"`, "#quot;", "<", "#lt;", ">", "#gt;", "\n", "<br/>")
	return `"` + r.Replace(s) + `"`
}
