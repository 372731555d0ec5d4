package graph

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
)

// WriteSVG lays the graph out with Graphviz's dot engine and writes SVG.
func WriteSVG(ctx context.Context, w io.Writer, g Graph) error {
	var dot bytes.Buffer
	if err := WriteDOT(&dot, g); err != nil {
		return err
	}
	svg, err := RenderDOT(ctx, dot.Bytes())
	if err != nil {
		return err
	}
	_, err = w.Write(svg)
	return err
}

// DotCommand is Graphviz's dot, which lays the graph out.
//
// Why the program and not goccy/go-graphviz (Graphviz as WebAssembly in
// this process): that package compiles its wasm module in an init
// function, so every labctl process paid for it — 115 ms and 25 MB at each
// start, each sim guest included (a guest is labctl), and a panic at
// start-up for a user who cannot write its cache under /tmp. Only `graph`
// and the bundle need a layout; DOT and mermaid need nothing.
var DotCommand = "dot"

// RenderDOT lays out DOT text with `dot -Tsvg` and returns the SVG.
func RenderDOT(ctx context.Context, dot []byte) ([]byte, error) {
	path, err := exec.LookPath(DotCommand)
	if err != nil {
		return nil, fmt.Errorf("graphviz's %s is not installed (Debian/Ubuntu: apt-get install graphviz; -o dot and -o mermaid need nothing): %w", DotCommand, err)
	}
	cmd := exec.CommandContext(ctx, path, "-Tsvg")
	cmd.Stdin = bytes.NewReader(dot)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("graphviz: dot -Tsvg: %w: %s", err, strings.TrimSpace(errb.String()))
	}
	if !bytes.Contains(out.Bytes(), []byte("<svg")) {
		return nil, errors.New("graphviz: dot -Tsvg printed no SVG")
	}
	return out.Bytes(), nil
}
