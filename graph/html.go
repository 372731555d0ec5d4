package graph

import (
	"bytes"
	"context"
	"html/template"
	"io"
	"time"
)

// HTMLOptions shape the page.
type HTMLOptions struct {
	// Refresh, when > 0, makes the browser reload the page this often
	// (a meta refresh: the page is one file, no script).
	Refresh time.Duration
	// Generated is the time printed in the footer.
	Generated time.Time
}

// WriteHTML writes one self-contained page: the SVG inline, the status
// table below it, no outside resource (no script, font or stylesheet).
func WriteHTML(ctx context.Context, w io.Writer, g Graph, o HTMLOptions) error {
	var svg bytes.Buffer
	if err := WriteSVG(ctx, &svg, g); err != nil {
		return err
	}
	// Graphviz's SVG starts with an XML declaration and DOCTYPE, which do
	// not belong inside HTML: keep the <svg> element only.
	s := svg.Bytes()
	if i := bytes.Index(s, []byte("<svg")); i >= 0 {
		s = s[i:]
	}
	data := struct {
		G         Graph
		SVG       template.HTML
		Refresh   int
		Generated string
	}{g, template.HTML(s), int(o.Refresh / time.Second), o.Generated.UTC().Format(time.RFC3339)}
	return pageTmpl.Execute(w, data)
}

var pageTmpl = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
{{if gt .Refresh 0}}<meta http-equiv="refresh" content="{{.Refresh}}">
{{end}}<title>lab {{.G.Lab}}</title>
<style>
body { font-family: Helvetica, Arial, sans-serif; margin: 1.5em; color: #2d3748; background: #fff; }
h1 { font-size: 1.3em; }
.problems { color: #c53030; font-weight: bold; }
.ok { color: #276749; }
table { border-collapse: collapse; margin-top: 1em; font-size: 0.85em; }
th, td { border: 1px solid #cbd5e0; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
tr.fail td { color: #c53030; background: #fff5f5; }
figure { margin: 0; }
figure svg { max-width: 100%; height: auto; }
footer { margin-top: 1em; font-size: 0.8em; color: #718096; }
</style>
</head>
<body>
<h1>lab {{.G.Lab}}{{if .G.Target}} ({{.G.Target}}){{end}}</h1>
{{if .G.Problems}}<p class="problems" id="problems">{{len .G.Problems}} problem(s): {{range $i, $p := .G.Problems}}{{if $i}}, {{end}}{{$p}}{{end}}</p>
{{else}}<p class="ok" id="problems">no problems observed</p>
{{end}}<figure id="graph">
{{.SVG}}
</figure>
<table id="status">
<thead><tr><th>layer</th><th>subject</th><th>check</th><th>observed</th><th>ok</th></tr></thead>
<tbody>
{{range .G.Rows}}<tr{{if not .OK}} class="fail"{{end}}><td>{{.Layer}}</td><td>{{.Subject}}</td><td>{{.Check}}</td><td>{{.Observed}}</td><td>{{if .OK}}yes{{else}}NO{{end}}</td></tr>
{{end}}</tbody>
</table>
<footer>labctl graph, {{.Generated}}{{if gt .Refresh 0}}; reloads every {{.Refresh}} s{{end}}</footer>
</body>
</html>
`))
