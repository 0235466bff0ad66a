package fuzz

import (
	"fmt"
	"math"
	"slices"

	"github.com/spcheck/spcheck/tensor"
)

// LayoutKind says how the ranks of a group hold a value (replicated, sharded, partial, as the
// Megatron-LM tensor_parallel/mappings.py collectives assume of their inputs and outputs).
type LayoutKind uint8

const (
	Replicated LayoutKind = iota // every rank holds the whole value
	Sharded                      // group rank t holds the t-th even block of Layout.Dim
	PartialSum                   // the value is the sum of the ranks' tensors (in group-rank order)
	PartialMax                   // the value is their element-wise maximum
	OnRoot                       // only group rank 0 holds the value
)

// Layout is a LayoutKind with its dim.
type Layout struct {
	Kind LayoutKind
	Dim  int // Sharded only
}

func (l Layout) String() string {
	switch l.Kind {
	case Replicated:
		return "replicated"
	case Sharded:
		return fmt.Sprintf("sharded(%d)", l.Dim)
	case PartialSum:
		return "partial(sum)"
	case PartialMax:
		return "partial(max)"
	}
	return "on-root"
}

// Logical is the value the ranks' tensors stand for. A replicated layout whose ranks disagree
// is an error: there is no single value to speak of.
func (l Layout) Logical(local []*tensor.Dense) (*tensor.Dense, error) {
	if len(local) == 0 || local[0] == nil {
		return nil, fmt.Errorf("%s value with no tensor on group rank 0", l)
	}
	for t, x := range local {
		if x == nil && l.Kind != OnRoot {
			return nil, fmt.Errorf("%s value missing on group rank %d", l, t)
		}
	}
	switch l.Kind {
	case Replicated:
		for t, x := range local[1:] {
			if !tensor.BitEqual(x, local[0]) {
				return nil, fmt.Errorf("replicated value differs between group ranks 0 and %d", t+1)
			}
		}
		return local[0], nil
	case Sharded:
		for t, x := range local[1:] {
			if !tensor.SameShape(x.Shape, local[0].Shape) {
				return nil, fmt.Errorf("shard of group rank %d has shape %v, rank 0's %v", t+1, x.Shape, local[0].Shape)
			}
		}
		return tensor.Concat(l.Dim, local...), nil
	case PartialSum, PartialMax:
		out := local[0].Clone()
		for t, x := range local[1:] {
			if !tensor.SameShape(x.Shape, out.Shape) {
				return nil, fmt.Errorf("summand of group rank %d has shape %v, rank 0's %v", t+1, x.Shape, out.Shape)
			}
			for i, v := range x.Data {
				if l.Kind == PartialMax {
					out.Data[i] = math.Max(out.Data[i], v)
				} else {
					out.Data[i] += v
				}
			}
		}
		return out, nil
	}
	return local[0], nil
}

// Random draws per-rank tensors of the given local shape holding a random value in layout l:
// the same tensor on every rank when replicated, independent ones otherwise, rank 0's only
// when on the root. Values depend only on the seed and salt.
func (l Layout) Random(seed uint64, salt string, n int, shape []int) []*tensor.Dense {
	out := make([]*tensor.Dense, n)
	for t := range out {
		switch {
		case t > 0 && l.Kind == Replicated:
			out[t] = out[0].Clone()
		case t > 0 && l.Kind == OnRoot:
		default:
			out[t] = tensor.NewRNG(seed, fmt.Sprintf("%s/%d", salt, t)).NormalTensor(1, slices.Clone(shape)...)
		}
	}
	return out
}
