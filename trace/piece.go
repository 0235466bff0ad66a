package trace

import (
	"fmt"
	"slices"

	"github.com/spcheck/spcheck/tensor"
)

// PieceCoord gives a stored tensor its coordinate on every mesh axis: the tensor's own coord,
// else the file's, else (when the mesh's axes multiply to the world size) the rank's row-major
// position, else -1.
func PieceCoord(m *Meta, tm *TensorMeta) []int {
	mesh := m.Mesh
	derive := tensor.Numel(mesh.Shape) == m.World
	c := make([]int, len(mesh.Axes))
	strides := tensor.Strides(mesh.Shape)
	for i, a := range mesh.Axes {
		c[i] = -1
		if v, ok := tm.Coord[a]; ok {
			c[i] = v
		} else if v, ok := m.Coord[a]; ok {
			c[i] = v
		} else if derive {
			c[i] = m.Rank / strides[i] % mesh.Shape[i]
		}
	}
	return c
}

// PieceSpans lists, per dim of the global shape, the global runs whose concatenation a piece at
// coordinates coord (per mesh axis, as PieceCoord gives them) stores along that dim, outer
// splits first, and the row count each dim's stored piece may be padded to (-1: none).
func PieceSpans(p Placement, mesh Mesh, coord []int, global []int) (spans [][]Span, padded []int, err error) {
	spans, padded = make([][]Span, len(global)), make([]int, len(global))
	for d, g := range global {
		runs, pad := []Span{{Lo: 0, Hi: g}}, -1
		for _, ap := range p {
			if ap.Kind != Shard || ap.Dim != d {
				continue
			}
			ai := slices.Index(mesh.Axes, ap.Axis)
			if ai < 0 || coord[ai] < 0 {
				return nil, nil, fmt.Errorf("the placement shards dim %d over axis %s, but the piece has no %s coordinate", d, ap.Axis, ap.Axis)
			}
			if runs, pad, err = ap.Spans(runs, mesh.Shape[ai], coord[ai]); err != nil {
				return nil, nil, fmt.Errorf("global shape %v: %v", global, err)
			}
		}
		spans[d], padded[d] = runs, pad
	}
	return spans, padded, nil
}
