package main

import (
	"encoding/json"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/labctl/labctl/graph"
	"github.com/labctl/labctl/internal/labtest"
	"github.com/labctl/labctl/internal/testenv"
)

func graphJSON(t *testing.T, l *labtest.Lab, spec string) graph.Graph {
	t.Helper()
	out := l.MustRun("graph", "--target", "sim", "-f", spec, "-o", "json")
	var g graph.Graph
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatalf("graph -o json: %v\n%s", err, out)
	}
	return g
}

// TestGraphSim draws a live two-guest sim lab in every format, breaks it
// (promiscuous mode off on dom0's uplink, one guest's port down) and
// checks the picture turns those parts red, and only those.
func TestGraphSim(t *testing.T) {
	t.Parallel()
	l := newLab(t)
	spec := fastSpec(t, "guests:\n  replicas: 2\n")
	deployJSON(t, l, "-f", spec)

	g := graphJSON(t, l, spec)
	if len(g.Problems) != 0 {
		t.Fatalf("healthy lab drawn with problems %v:\n%+v", g.Problems, g.Nodes)
	}
	ports := map[string]bool{}
	for _, n := range g.Nodes {
		if strings.HasPrefix(n.ID, "port:auth-") {
			ports[n.Lines[0]] = true
		}
	}
	if !ports["vif1.0"] || !ports["vif2.0"] {
		t.Errorf("guest ports = %v, want vif1.0 and vif2.0 (from dom0's FDB)", ports)
	}
	dot := l.MustRun("graph", "--target", "sim", "-f", spec, "-o", "dot")
	mer := l.MustRun("graph", "--target", "sim", "-f", spec, "-o", "mermaid")
	for _, want := range []string{`"guest:auth-1"`, `"guest:auth-2"`, "vboxnet4 192.168.77.1/24", "PROMISC on", "NAT on", "forwarding on"} {
		if !strings.Contains(dot, want) {
			t.Errorf("DOT lacks %q:\n%s", want, dot)
		}
	}
	if !strings.HasPrefix(mer, "flowchart LR\n") || !strings.Contains(mer, "auth-2<br/>") {
		t.Errorf("mermaid:\n%s", mer)
	}
	svg := l.MustRun("graph", "--target", "sim", "-f", spec)
	if !strings.Contains(svg, "<svg") || strings.Contains(svg, "#c53030") {
		t.Errorf("SVG of a healthy lab: no <svg> or red in it")
	}

	// Break two hops; the picture shows each where it is.
	labtest.Exec(t, l.Dom0NS(), "ip", "link", "set", "eth1", "promisc", "off")
	labtest.Exec(t, l.Dom0NS(), "ip", "link", "set", "vif2.0", "down")
	g = graphJSON(t, l, spec)
	red := map[string]bool{}
	for _, id := range g.Problems {
		red[id] = true
	}
	if !red["port:eth1"] || !red["guest:auth-2"] || red["guest:auth-1"] || red["host"] {
		t.Errorf("problems = %v, want port:eth1 and guest:auth-2, not auth-1 or host", g.Problems)
	}
	dot = l.MustRun("graph", "--target", "sim", "-f", spec, "-o", "dot")
	if !regexp.MustCompile(`"port:eth1" \[label="eth1 \(uplink\)\\nPROMISC off[^\]]*color="#c53030"`).MatchString(dot) {
		t.Errorf("eth1 not drawn red with PROMISC off:\n%s", dot)
	}
}

// TestGraphHTMLChromium renders `graph -o html` in headless Chromium: the
// screenshot is not blank and the rendered SVG has one node per guest.
func TestGraphHTMLChromium(t *testing.T) {
	t.Parallel()
	browser := chromiumPath(t)
	l := newLab(t)
	spec := fastSpec(t, "guests:\n  replicas: 3\n")
	deployJSON(t, l, "-f", spec)
	page := l.MustRun("graph", "--target", "sim", "-f", spec, "-o", "html", "--refresh", "30s")
	dir := t.TempDir()
	html := filepath.Join(dir, "lab.html")
	if err := os.WriteFile(html, []byte(page), 0o644); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(dir, "shot.png")
	chromium(t, browser, "--window-size=1400,1000", "--screenshot="+shot, "file://"+html)
	f, err := os.Open(shot)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if n := colours(img); n < 8 {
		t.Errorf("screenshot has %d colours: blank", n)
	}
	// The DOM as Chromium parsed it: count the SVG's guest nodes.
	dom := chromium(t, browser, "--dump-dom", "file://"+html)
	titles := regexp.MustCompile(`<g id="node\d+" class="node">\s*<title>guest:([^<]*)</title>`).FindAllStringSubmatch(dom, -1)
	seen := map[string]bool{}
	for _, m := range titles {
		seen[m[1]] = true
	}
	if len(titles) != 3 || !seen["auth-1"] || !seen["auth-2"] || !seen["auth-3"] {
		t.Errorf("rendered SVG has guest nodes %v, want one each for auth-1..3", titles)
	}
	if !strings.Contains(dom, `<table id="status">`) || !strings.Contains(dom, `http-equiv="refresh" content="30"`) {
		t.Error("page lacks the status table or the refresh")
	}
}

func chromiumPath(t *testing.T) string {
	t.Helper()
	testenv.RequireTool(t, "chromium")
	p, _ := exec.LookPath("chromium")
	return p
}

// chromium runs headless Chromium as root with a fresh profile, no
// network of its own and no GPU, and returns its stdout.
func chromium(t *testing.T, browser string, args ...string) string {
	t.Helper()
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir()}
	cmd := exec.Command(browser, append(base, args...)...)
	var errb strings.Builder
	cmd.Stderr = &errb
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.Output(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("chromium %v: no answer in 2 minutes\n%s", args, errb.String())
	}
	if err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	return string(out)
}

// colours counts distinct colours (capped), a blank page having one.
func colours(img image.Image) int {
	seen := map[[4]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, a := img.At(x, y).RGBA()
			seen[[4]uint32{r, g, bl, a}] = true
			if len(seen) > 256 {
				return len(seen)
			}
		}
	}
	return len(seen)
}
