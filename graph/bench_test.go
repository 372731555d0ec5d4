package graph

import (
	"context"
	"io"
	"testing"
)

// BenchmarkWriteSVG: one layout of the sim lab (dot -Tsvg, one process
// per call as labctl graph does).
func BenchmarkWriteSVG(b *testing.B) {
	in := simInput(b)
	cases[3].mutate(&in)
	g := Build(in)
	for b.Loop() {
		if err := WriteSVG(context.Background(), io.Discard, g); err != nil {
			b.Fatal(err)
		}
	}
}
