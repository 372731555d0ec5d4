package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/labctl/labctl/doctor"
	"github.com/labctl/labctl/provision"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// simInput is a real sim lab's status and doctor output (captured with
// labctl status/doctor --target sim --json, lab renamed to mirage).
func simInput(t testing.TB) Input {
	t.Helper()
	var st provision.GuestsResult
	readJSON(t, "sim-status.json", &st)
	var dr struct {
		Findings []doctor.Finding `json:"findings"`
	}
	readJSON(t, "sim-doctor.json", &dr)
	return Input{Spec: provision.Default(), Status: st, Findings: dr.Findings, HostIf: "vboxnet4"}
}

func readJSON(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// Faults applied to the healthy sim lab, each as the live lab reports it.
var cases = []struct {
	name     string
	mutate   func(*Input)
	problems []string // node IDs drawn red
}{
	{"healthy", func(*Input) {}, nil},
	{"promisc-off", func(in *Input) {
		setItem(in, "promisc", "eth1 PROMISC flag", "off", false)
		setFinding(in, doctor.LayerDom0, "", doctor.CheckUplink, doctor.StatusFail, "eth1 is up, a port of br0, PROMISC off")
	}, []string{"port:eth1"}},
	{"guest-unreachable-from-host", func(in *Input) {
		setFinding(in, doctor.LayerGuest, "auth-1", doctor.CheckGuestPath, doctor.StatusFail, "guest auth-1 answers from dom0 but not from the host")
	}, []string{"guest:auth-1"}},
	{"two-guests-one-down", func(in *Input) {
		g := in.Status.Guests[0]
		g.Name, g.MAC, g.IP, g.State, g.Healthy, g.Port = "auth-2", "00:16:3e:11:22:33", "192.168.77.4", "stopped", false, ""
		in.Status.Guests = append(in.Status.Guests, g)
		in.Status.Steps = append(in.Status.Steps, provision.StepResult{Step: provision.GuestStep("auth-2"), Status: "planned", Items: []provision.Item{
			{Name: "state", Desired: "running", Observed: "stopped"},
			{Name: "lease", Desired: "192.168.77.4", Observed: "none"}}})
		in.Spec.Network.NAT = true
		setItem(in, "nat", "chain nat/LABCTL-POST", "absent", false)
	}, []string{"dom0", "port:auth-2", "guest:auth-2"}},
}

func setItem(in *Input, step, name, observed string, ok bool) {
	for i := range in.Status.Steps {
		for j := range in.Status.Steps[i].Items {
			it := &in.Status.Steps[i].Items[j]
			if in.Status.Steps[i].Step == step && it.Name == name {
				it.Observed, it.OK = observed, ok
				return
			}
		}
	}
	panic("no item " + step + "/" + name)
}

func setFinding(in *Input, layer doctor.Layer, subject, check string, st doctor.Status, detail string) {
	for i := range in.Findings {
		f := &in.Findings[i]
		if f.Layer == layer && f.Subject == subject && f.Check == check {
			f.Status, f.Detail = st, detail
			return
		}
	}
	panic("no finding " + check)
}

func TestBuildGolden(t *testing.T) {
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := simInput(t)
			c.mutate(&in)
			g := Build(in)
			if strings.Join(g.Problems, ",") != strings.Join(c.problems, ",") {
				t.Errorf("problems = %v, want %v", g.Problems, c.problems)
			}
			var dot, mer bytes.Buffer
			if err := WriteDOT(&dot, g); err != nil {
				t.Fatal(err)
			}
			if err := WriteMermaid(&mer, g); err != nil {
				t.Fatal(err)
			}
			golden(t, c.name+".dot", dot.Bytes())
			golden(t, c.name+".mmd", mer.Bytes())
		})
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	p := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(p, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(p)
	if err != nil {
		t.Fatalf("%v (run go test ./graph -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (go test ./graph -update to accept):\n%s", p, got)
	}
}

// The live values land in the picture, not the spec's: a bridge address
// observed different from the spec's shows the observed one.
func TestBuildShowsObserved(t *testing.T) {
	in := simInput(t)
	setItem(in.withPtr(), "address", "br0 address", "10.9.9.9/24", false)
	g := Build(in)
	var br Node
	for _, n := range g.Nodes {
		if n.ID == "bridge:br0" {
			br = n
		}
	}
	if !br.Problem || br.Lines[1] != "10.9.9.9/24" {
		t.Errorf("bridge node = %+v, want the observed address and a problem", br)
	}
	// A lab that reported nothing is all unknown and red, never green.
	gs := append([]provision.GuestStatus(nil), in.Status.Guests...)
	gs[0].Port = ""
	g = Build(Input{Spec: provision.Default(), Status: provision.GuestsResult{Result: provision.Result{Lab: "x"}, Guests: gs}})
	for _, n := range g.Nodes {
		if n.Kind != KindWAN && !n.Problem {
			t.Errorf("node %s drawn healthy from no observation: %v", n.ID, n.Lines)
		}
	}
}

func (in *Input) withPtr() *Input { return in }

var svgNodeTitle = regexp.MustCompile(`<g id="node\d+" class="node">\s*<title>([^<]*)</title>`)

func TestSVGOneNodePerGuest(t *testing.T) {
	in := simInput(t)
	cases[3].mutate(&in)
	var svg bytes.Buffer
	if err := WriteSVG(context.Background(), &svg, Build(in)); err != nil {
		t.Fatal(err)
	}
	guests := 0
	for _, m := range svgNodeTitle.FindAllStringSubmatch(svg.String(), -1) {
		if strings.HasPrefix(m[1], "guest:") {
			guests++
		}
	}
	if guests != 2 {
		t.Errorf("SVG has %d guest nodes, want 2:\n%s", guests, svg.String())
	}
	if !strings.Contains(svg.String(), colorProblem) {
		t.Error("SVG draws no problem in red")
	}
}

func TestHTMLSelfContained(t *testing.T) {
	in := simInput(t)
	var page bytes.Buffer
	if err := WriteHTML(context.Background(), &page, Build(in), HTMLOptions{Refresh: 5e9}); err != nil {
		t.Fatal(err)
	}
	s := page.String()
	for _, want := range []string{`<meta http-equiv="refresh" content="5">`, "<svg", `<table id="status">`, "vboxnet4"} {
		if !strings.Contains(s, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"<script", "src=\"http", "href=\"http", "<?xml", "<link"} {
		if strings.Contains(s, bad) {
			t.Errorf("page has %q: not self-contained", bad)
		}
	}
}
