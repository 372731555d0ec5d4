package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/graph"
	"github.com/labctl/labctl/provision"
	"github.com/labctl/labctl/vmctl"
	"github.com/spf13/cobra"
)

// Graph output formats.
var graphFormats = []string{"svg", "dot", "mermaid", "html", "json"}

func newGraphCmd(a *app) *cobra.Command {
	var format string
	var refresh time.Duration
	cmd := &cobra.Command{
		Use:   "graph",
		Short: "Draw the live lab: host, dom0's uplink, bridge, NAT, forwarding and dnsmasq, each guest's port and health; problems in red",
		Long: `graph asks the live lab (what labctl status and labctl doctor observe, not
the spec) and draws it: -o svg (laid out by Graphviz, built in), dot,
mermaid, json (the model), or html: one self-contained page with the SVG
and the status table (--refresh reloads it). docs/observe.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if !containsString(graphFormats, format) {
				return &exitError{exitUsage, fmt.Errorf("-o %q: expected one of svg, dot, mermaid, html, json", format)}
			}
			if refresh < 0 || (refresh > 0 && refresh < time.Second) {
				return &exitError{exitUsage, fmt.Errorf("--refresh %s: expected 0 (off) or at least 1s", refresh)}
			}
			spec, err := a.loadSpec()
			if err != nil {
				return err
			}
			g := graph.Build(diagnosis{a}.observe(cmd, spec).graphInput(spec, a.target))
			if len(g.Problems) > 0 {
				a.log.Warn("the lab has problems (drawn in red)", "nodes", g.Problems)
			}
			return renderGraph(cmd.Context(), cmd.OutOrStdout(), g, format, refresh)
		},
	}
	addTargetFlags(cmd, a)
	cmd.Flags().StringVarP(&format, "output", "o", "svg", "format: svg, dot, mermaid, html or json")
	cmd.Flags().DurationVar(&refresh, "refresh", 0, "-o html: the page reloads itself this often (e.g. 5s; with a web server or a file:// tab kept open by a loop re-running graph)")
	return cmd
}

func renderGraph(ctx context.Context, w io.Writer, g graph.Graph, format string, refresh time.Duration) error {
	switch format {
	case "dot":
		return graph.WriteDOT(w, g)
	case "mermaid":
		return graph.WriteMermaid(w, g)
	case "html":
		return graph.WriteHTML(ctx, w, g, graph.HTMLOptions{Refresh: refresh, Generated: time.Now()})
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(g)
	}
	return graph.WriteSVG(ctx, w, g)
}

// observation is the live lab as status and doctor see it; graph and
// bundle both draw on it.
type observation struct {
	status    provision.GuestsResult
	statusErr error
	findings  []doctor.Finding
	vm        string
}

// observe runs status and doctor on the target. Neither failing stops
// it: what could not be observed is drawn as a problem.
func (a diagnosis) observe(cmd *cobra.Command, spec provision.Spec) observation {
	var o observation
	ctx := cmd.Context()
	st, err := onDom0[provision.GuestsResult](a.app, ctx, cmd, spec, "status", provision.AgentRequest{})
	if o.statusErr = err; err == nil {
		o.status = *st
	} else {
		o.status.Lab, o.status.Target = spec.Lab, a.target
	}
	ts, err := parseTarget(a.target)
	if err != nil {
		return o
	}
	o.vm = envOr("LABCTL_VM_NAME", "labctl-dom0")
	if ts.kind == targetVagrant {
		if id := vagrantVMID(ts.dir, a.remote.machine); id != "" {
			o.vm = id
		}
	}
	o.findings = a.doctor(ctx, cmd, spec, ts, o.vm)
	return o
}

func (o observation) graphInput(spec provision.Spec, target string) graph.Input {
	hostIf := ""
	if target == targetSim {
		hostIf = vmctl.SimHostIf
	}
	in := graph.Input{Spec: spec, Status: o.status, Findings: o.findings, HostIf: hostIf}
	if o.statusErr != nil {
		in.Findings = append(in.Findings, doctor.Finding{Layer: doctor.LayerDom0, Check: "agent", Status: doctor.StatusFail,
			Detail: "status: " + o.statusErr.Error()})
	}
	return in
}

func containsString(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}
