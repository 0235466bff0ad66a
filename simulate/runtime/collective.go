package runtime

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
)

// collective checks that every member posted the same op and computes each member's result.
// members[k] is group rank k's pending op.
func (c *coordinator) collective(g *ir.Group, members []*pending) ([]*tensor.Dense, error) {
	if err := c.checkAgree(g, members); err != nil {
		return nil, err
	}
	op := members[0].op
	n := len(members)
	in := make([]*tensor.Dense, n)
	for k, m := range members {
		in[k] = m.in
	}
	out := make([]*tensor.Dense, n)
	var moved int
	dt := members[0].dt
	if op.Op == ir.OpBroadcast {
		dt = members[op.Attr.Int("root")].dt
	}
	for _, m := range members {
		m.dt = dt
	}
	switch op.Op {
	case ir.OpAllReduce:
		red := c.reduce(in, op.Attr.Str("reduce"), dt)
		for k := range out {
			out[k] = red.Clone()
		}
		moved = red.Numel()
	case ir.OpAllGather:
		cat := tensor.Concat(op.Attr.Int("dim"), in...)
		for k := range out {
			out[k] = cat.Clone()
		}
		moved = cat.Numel()
	case ir.OpAllGatherFlat:
		flat := make([]*tensor.Dense, n)
		for k, x := range in {
			flat[k] = x.Flatten()
		}
		cat := tensor.Concat(0, flat...).Reshape(op.Attr.IntList("shape")...)
		for k := range out {
			out[k] = cat.Clone()
		}
		moved = cat.Numel()
	case ir.OpReduceScatter:
		red := c.reduce(in, ir.ReduceSum, dt)
		d := op.Attr.Int("dim")
		chunk := red.Shape[d] / n
		for k := range out {
			out[k] = red.Narrow(d, k*chunk, chunk) // chunk k to group rank k
		}
		moved = red.Numel()
	case ir.OpBroadcast:
		root := in[op.Attr.Int("root")]
		for k := range out {
			out[k] = root.Clone()
		}
		moved = root.Numel()
	}
	c.stats.Collectives++
	c.stats.CommBytes += 8 * int64(moved) * int64(n)
	return out, nil
}

// reduce combines the members' tensors: in float64 in group-rank order (reduceOrdered), in low
// precision a sum goes around the ring in the collective's dtype (ringSum).
func (c *coordinator) reduce(in []*tensor.Dense, how string, dt tensor.DType) *tensor.Dense {
	if c.store == 0 || how == ir.ReduceMax || dt == 0 {
		return reduceOrdered(in, how)
	}
	return ringSum(in, dt)
}

// reduceOrdered reduces element-wise in group-rank order: ((x0 ∘ x1) ∘ x2) ∘ …, so every
// member gets the same bits whatever the arrival order.
func reduceOrdered(in []*tensor.Dense, how string) *tensor.Dense {
	out := in[0].Clone()
	for _, x := range in[1:] {
		for i, v := range x.Data {
			if how == ir.ReduceMax {
				out.Data[i] = math.Max(out.Data[i], v)
			} else {
				out.Data[i] += v
			}
		}
	}
	return out
}

// checkAgree reports a collective whose members disagree on the op, its attributes or the
// shapes NCCL needs to agree.
func (c *coordinator) checkAgree(g *ir.Group, members []*pending) error {
	first := members[0].op
	for _, m := range members[1:] {
		if m.op.Op != first.Op || !reflect.DeepEqual(m.op.Attr, first.Attr) {
			return c.mismatch(g, members, "the members issued different collectives")
		}
	}
	switch first.Op {
	case ir.OpReduceScatter:
		d := first.Attr.Int("dim")
		for _, m := range members {
			if d < 0 || d >= m.in.Rank() || m.in.Shape[d]%len(members) != 0 {
				return c.mismatch(g, members, fmt.Sprintf("reduce_scatter on dim %d needs that dim divisible by the group size %d", d, len(members)))
			}
		}
	case ir.OpAllGather:
		d := first.Attr.Int("dim")
		if d < 0 || d >= members[0].in.Rank() {
			return c.mismatch(g, members, fmt.Sprintf("all_gather on dim %d of a rank-%d tensor", d, members[0].in.Rank()))
		}
	case ir.OpAllGatherFlat:
		want := tensor.Numel(first.Attr.IntList("shape"))
		if members[0].in.Numel()*len(members) != want {
			return c.mismatch(g, members, fmt.Sprintf("all_gather_flat of %d chunks of %d elements into shape %v", len(members), members[0].in.Numel(), first.Attr.IntList("shape")))
		}
	case ir.OpBroadcast:
		return nil // only the root has an input
	}
	for _, m := range members[1:] {
		if !tensor.SameShape(m.in.Shape, members[0].in.Shape) {
			return c.mismatch(g, members, "the members' tensors differ in shape")
		}
	}
	return nil
}

func (c *coordinator) mismatch(g *ir.Group, members []*pending, why string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "collective mismatch on group %s: %s:", g, why)
	for k, m := range members {
		shape := "-"
		if m.in != nil {
			shape = fmt.Sprint(m.in.Shape)
		}
		fmt.Fprintf(&b, "\n  rank %d op %d %s shape %s", g.Ranks[k], m.index, m.op.String(), shape)
	}
	return &Error{Kind: ErrMismatch, Ranks: g.Ranks, Msg: b.String()}
}
