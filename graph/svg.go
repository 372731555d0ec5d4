package graph

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/goccy/go-graphviz"
)

// renderMu serializes layouts: go-graphviz v0.2.10 parses through one
// shared wasm module (cgraph.ParseBytes calls wasm.MemRead with
// context.Background on a package-level instance), so concurrent renders
// would share its memory.
var renderMu sync.Mutex

// WriteSVG lays the graph out with Graphviz's dot engine and writes SVG.
// Graphviz runs as WebAssembly inside this process (goccy/go-graphviz
// v0.2.10: graphviz.New, graphviz.ParseBytes, (*Graphviz).Render with
// graphviz.SVG), so no system graphviz is needed.
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

// RenderDOT lays out DOT text and returns the SVG.
func RenderDOT(ctx context.Context, dot []byte) ([]byte, error) {
	renderMu.Lock()
	defer renderMu.Unlock()
	gv, err := graphviz.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("graphviz: %w", err)
	}
	defer gv.Close()
	gr, err := graphviz.ParseBytes(dot)
	if err != nil {
		return nil, fmt.Errorf("graphviz: parsing the lab's DOT: %w", err)
	}
	defer gr.Close()
	var out bytes.Buffer
	if err := gv.Render(ctx, gr, graphviz.SVG, &out); err != nil {
		return nil, fmt.Errorf("graphviz: rendering SVG: %w", err)
	}
	return out.Bytes(), nil
}
