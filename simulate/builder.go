package simulate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
)

// tpPlace is how a value is laid out over its TP group (replicated, sharded, partial, as the
// Megatron-LM tensor_parallel/mappings.py collectives assume).
type tpPlace uint8

const (
	rep  tpPlace = iota // every TP rank holds the same full tensor
	shrd                // TP rank t holds block t of dim val.dim
	part                // every TP rank holds a summand
)

func (p tpPlace) String() string { return [...]string{"replicated", "sharded", "partial"}[p] }

// val is a value of a rank's program: its symbol, local shape and TP placement, and what the
// backward needs (the gradient accumulated so far, the parameter it is).
type val struct {
	sym   string
	shape []int
	pl    tpPlace
	dim   int // shrd: the sharded dim
	block int // shrd: rows per rank when shards are padded (0 = even split)
	gsize int // shrd: the real global size of dim

	// gathered: the value comes out of a sequence all-gather, whose adjoint reduce-scatters
	// the partial gradients of the column-parallel linears reading it (Megatron SP); other
	// replicated inputs of column-parallel linears go through copyTP, whose adjoint
	// all-reduces them.
	gathered bool
	param    string // the logical parameter name when the value is a parameter's local shard
	grad     *val
}

func (v *val) String() string { return fmt.Sprintf("%s%v(%s)", v.sym, v.shape, v.pl) }

// builder emits one rank's program. Forward methods emit ops and push the matching backward
// onto the tape; replaying the tape in reverse emits the backward.
type builder struct {
	l    *layout
	c    coord
	rank int

	ops    []ir.Op
	inputs []string
	init   map[string]*tensor.Dense
	gen    map[string]Generated
	nsym   int
	order  int

	tape    []func()
	regions []Region        // every layer's forward, for activation recompute
	mb      int             // micro-batch being emitted (-1: none)
	params  map[string]*val // local parameter shards by logical name
	pgrad   map[string]*val // accumulated parameter grads
}

func newBuilder(l *layout, rank int) *builder {
	return &builder{l: l, c: l.coordOf(rank), rank: rank, init: map[string]*tensor.Dense{},
		gen: map[string]Generated{},
		mb:  -1, params: map[string]*val{}, pgrad: map[string]*val{}}
}

// newSym returns a fresh symbol named after hint.
func (b *builder) newSym(hint string) string {
	b.nsym++
	return fmt.Sprintf("%s#%d", hint, b.nsym)
}

// input registers an init tensor as a program input.
func (b *builder) input(sym string, t *tensor.Dense) *val {
	b.inputs = append(b.inputs, sym)
	b.init[sym] = t
	return &val{sym: sym, shape: slices.Clone(t.Shape)}
}

func (b *builder) emit(o ir.Op) { b.ops = append(b.ops, o) }

func (b *builder) push(f func()) { b.tape = append(b.tape, f) }

// like returns a new value with v's placement and the given shape, bound to a fresh symbol.
func (b *builder) like(v *val, hint string, shape []int) *val {
	return &val{sym: b.newSym(hint), shape: shape, pl: v.pl, dim: v.dim, block: v.block, gsize: v.gsize}
}

// op emits a local op with one output and returns it (no backward).
func (b *builder) op(name string, in []*val, a ir.Attrs, out *val) *val {
	b.emit(ir.Op{Op: name, In: syms(in), Out: []string{out.sym}, Attr: a})
	return out
}

func syms(vs []*val) []string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = v.sym
	}
	return s
}

// accum adds g to v's gradient (or to its parameter's gradient).
func (b *builder) accum(v, g *val) {
	if g == nil {
		return
	}
	if v.param != "" {
		b.accumParam(v.param, g)
		return
	}
	if !slices.Equal(v.shape, g.shape) {
		panic(fmt.Sprintf("simulate: gradient %v for value %v", g, v))
	}
	if v.grad == nil {
		v.grad = g
		return
	}
	acc := v.grad
	if acc.pl != g.pl {
		if acc.pl == shrd || g.pl == shrd {
			panic(fmt.Sprintf("simulate: adding a %s gradient %v to a %s one %v", g.pl, g, acc.pl, acc))
		}
		acc, g = b.toPartial(acc), b.toPartial(g) // e.g. a gathered hidden read by a head and an unsharded norm
	}
	v.grad = b.addRaw(acc, g)
}

// accumParam adds g to a parameter's gradient. A replicated parameter's contributions may be
// replicated (computed on full tensors: every TP rank has the whole contribution) or partial
// (computed on this rank's rows); to add them, a replicated contribution is made partial by
// keeping it on TP rank 0 only (exact: no scaling).
func (b *builder) accumParam(name string, g *val) {
	acc := b.pgrad[name]
	if acc == nil {
		b.pgrad[name] = g
		return
	}
	if acc.pl != g.pl {
		acc, g = b.toPartial(acc), b.toPartial(g)
	}
	b.pgrad[name] = b.addRaw(acc, g)
}

func (b *builder) toPartial(g *val) *val {
	if g.pl != rep {
		return g
	}
	out := &val{sym: b.newSym("grad_part"), shape: g.shape, pl: part}
	if b.c.tp == 0 {
		return b.op(ir.OpCopy, []*val{g}, ir.Attrs{}, out)
	}
	return b.op(ir.OpZeros, nil, ir.Ints("shape", g.shape), out)
}

// backward replays a tape in reverse.
func (b *builder) backward(tape []func()) {
	for i := len(tape) - 1; i >= 0; i-- {
		tape[i]()
	}
}

// ---- element-wise and shape ops ----

// addRaw emits x + y (same shape and placement) without a backward.
func (b *builder) addRaw(x, y *val) *val {
	if x.pl != y.pl || !slices.Equal(x.shape, y.shape) {
		panic(fmt.Sprintf("simulate: add of %v and %v", x, y))
	}
	return b.op(ir.OpAdd, []*val{x, y}, ir.Attrs{}, b.like(x, "add", x.shape))
}

// addG is x + y; its backward passes the gradient to both.
func (b *builder) addG(x, y *val) *val {
	out := b.addRaw(x, y)
	b.push(func() {
		b.accum(x, out.grad)
		b.accum(y, out.grad)
	})
	return out
}

func (b *builder) reshape(x *val, shape ...int) *val {
	out := b.op(ir.OpReshape, []*val{x}, ir.Ints("shape", shape), b.like(x, "reshape", shape))
	b.push(func() {
		if g := out.grad; g != nil {
			b.accum(x, b.op(ir.OpReshape, []*val{g}, ir.Ints("shape", x.shape), b.like(g, "reshape", x.shape)))
		}
	})
	return out
}

func withDim(shape []int, d, n int) []int {
	s := slices.Clone(shape)
	s[d] = n
	return s
}

// narrow keeps [start, start+n) of dim d; its adjoint pads with zeros.
func (b *builder) narrow(x *val, d, start, n int) *val {
	if start == 0 && n == x.shape[d] {
		return x
	}
	out := b.op(ir.OpNarrow, []*val{x}, ir.Ints("dim", d, "start", start, "len", n), b.like(x, "narrow", withDim(x.shape, d, n)))
	b.push(func() {
		if g := out.grad; g != nil {
			b.accum(x, b.padRaw(g, d, start, x.shape[d]-start-n))
		}
	})
	return out
}

// pad appends after zero rows to dim d; its adjoint drops them.
func (b *builder) pad(x *val, d, after int) *val {
	if after == 0 {
		return x
	}
	out := b.padRaw(x, d, 0, after)
	b.push(func() {
		if g := out.grad; g != nil {
			b.accum(x, b.narrowRaw(g, d, 0, x.shape[d]))
		}
	})
	return out
}

func (b *builder) padRaw(x *val, d, before, after int) *val {
	return b.op(ir.OpPad, []*val{x}, ir.Ints("dim", d, "before", before, "after", after), b.like(x, "pad", withDim(x.shape, d, x.shape[d]+before+after)))
}

func (b *builder) narrowRaw(x *val, d, start, n int) *val {
	return b.op(ir.OpNarrow, []*val{x}, ir.Ints("dim", d, "start", start, "len", n), b.like(x, "narrow", withDim(x.shape, d, n)))
}

// concat joins same-placement values on dim d; its adjoint splits.
func (b *builder) concat(d int, xs ...*val) *val {
	shape := slices.Clone(xs[0].shape)
	sizes := make([]int, len(xs))
	shape[d] = 0
	for i, x := range xs {
		sizes[i] = x.shape[d]
		shape[d] += x.shape[d]
	}
	out := b.op(ir.OpConcat, xs, ir.Ints("dim", d), b.like(xs[0], "concat", shape))
	b.push(func() {
		g := out.grad
		if g == nil {
			return
		}
		parts := make([]*val, len(xs))
		for i, x := range xs {
			parts[i] = b.like(g, "split", x.shape)
		}
		b.emit(ir.Op{Op: ir.OpSplit, In: []string{g.sym}, Out: syms(parts), Attr: ir.Ints("dim", d, "sizes", sizes)})
		for i, x := range xs {
			b.accum(x, parts[i])
		}
	})
	return out
}

// ---- model kernels ----

// linear is y = x·Wᵀ. Its placement follows Megatron: a column-parallel weight (rows sharded)
// on a replicated x gives a sharded y (last dim); a row-parallel weight (columns sharded) on a
// sharded x gives a partial y; a replicated weight keeps x's placement.
func (b *builder) linear(x, w *val) *val {
	shape := append(slices.Clone(x.shape[:len(x.shape)-1]), w.shape[0])
	last := len(shape) - 1
	out := &val{sym: b.newSym("linear"), shape: shape}
	switch {
	case w.pl == shrd && w.dim == 0:
		mustPlace(x, rep, "input of a column-parallel linear")
		out.pl, out.dim, out.block, out.gsize = shrd, last, w.block, w.gsize
	case w.pl == shrd && w.dim == 1:
		mustPlace(x, shrd, "input of a row-parallel linear")
		out.pl = part
	default:
		out.pl, out.dim, out.block, out.gsize = x.pl, x.dim, x.block, x.gsize
	}
	b.op(ir.OpLinear, []*val{x, w}, ir.Attrs{}, out)
	b.push(func() {
		g := out.grad
		if g == nil {
			return
		}
		dx := &val{sym: b.newSym("dlinear_x"), shape: x.shape, pl: g.pl, dim: x.dim, block: x.block, gsize: x.gsize}
		switch {
		case w.pl == shrd && w.dim == 0:
			dx.pl = part // each rank's columns contribute to every input feature
		case w.pl == shrd && w.dim == 1:
			mustPlace(g, rep, "gradient of a row-parallel linear's output")
			dx.pl = shrd
		}
		b.op(ir.OpLinearGradInput, []*val{g, w}, ir.Attrs{}, dx)
		dw := &val{sym: b.newSym("dlinear_w"), shape: w.shape, pl: w.pl, dim: w.dim, block: w.block, gsize: w.gsize}
		if w.pl == rep && (x.pl != rep || g.pl != rep) {
			dw.pl = part
		}
		b.op(ir.OpLinearGradWeight, []*val{g, x}, ir.Attrs{}, dw)
		b.accum(x, dx)
		b.accum(w, dw)
	})
	return out
}

func mustPlace(v *val, want tpPlace, what string) {
	if v.pl != want {
		panic(fmt.Sprintf("simulate: %s is %s (%v), want %s", what, v.pl, v, want))
	}
}

// rmsnorm normalises rows; on a sequence shard its weight gradient is partial.
func (b *builder) rmsnorm(x, w *val) *val {
	if x.pl == part {
		panic(fmt.Sprintf("simulate: rmsnorm of a partial sum %v", x))
	}
	y := b.like(x, "rmsnorm", x.shape)
	rstd := &val{sym: b.newSym("rstd"), shape: []int{tensor.Numel(x.shape) / x.shape[len(x.shape)-1]}}
	b.emit(ir.Op{Op: ir.OpRMSNorm, In: []string{x.sym, w.sym}, Out: []string{y.sym, rstd.sym}})
	b.push(func() {
		g := y.grad
		if g == nil {
			return
		}
		mustPlace(g, x.pl, "gradient of an rmsnorm output")
		dx := b.like(x, "drmsnorm_x", x.shape)
		dw := &val{sym: b.newSym("drmsnorm_w"), shape: w.shape, pl: rep}
		if x.pl != rep {
			dw.pl = part
		}
		b.emit(ir.Op{Op: ir.OpRMSNormGrad, In: []string{x.sym, w.sym, rstd.sym, g.sym}, Out: []string{dx.sym, dw.sym}})
		b.accum(x, dx)
		b.accum(w, dw)
	})
	return y
}

// rope rotates x at the given positions; role tags the op and its adjoint (e.g. RoleMTPRoPE).
func (b *builder) rope(x *val, pos []int, role string) *val {
	out := b.op(ir.OpRoPE, []*val{x}, ir.Ints("pos", pos), b.like(x, "rope", x.shape))
	b.ops[len(b.ops)-1].Role = role
	b.push(func() {
		if g := out.grad; g != nil {
			b.accum(x, b.op(ir.OpRoPEGrad, []*val{g}, ir.Ints("pos", pos), b.like(g, "drope", g.shape)))
			b.ops[len(b.ops)-1].Role = role
		}
	})
	return out
}

// attention is causal attention inside the packed sequences cu; role tags the op and its
// adjoint (e.g. RoleMTPAttention).
func (b *builder) attention(q, k, v *val, cu []int, role string) *val {
	out := b.like(q, "attention", q.shape)
	probs := &val{sym: b.newSym("probs"), shape: []int{q.shape[0], q.shape[2], q.shape[1], q.shape[1]}}
	b.emit(ir.Op{Op: ir.OpAttention, In: syms([]*val{q, k, v}), Out: []string{out.sym, probs.sym}, Attr: ir.Ints("cu", cu), Role: role})
	b.push(func() {
		g := out.grad
		if g == nil {
			return
		}
		dq, dk, dv := b.like(q, "dq", q.shape), b.like(k, "dk", k.shape), b.like(v, "dv", v.shape)
		b.emit(ir.Op{Op: ir.OpAttentionGrad, In: syms([]*val{q, k, v, probs, g}), Out: syms([]*val{dq, dk, dv}), Attr: ir.Ints("cu", cu), Role: role})
		b.accum(q, dq)
		b.accum(k, dk)
		b.accum(v, dv)
	})
	return out
}

func (b *builder) swiglu(gate, up *val) *val {
	out := b.op(ir.OpSwiGLU, []*val{gate, up}, ir.Attrs{}, b.like(gate, "swiglu", gate.shape))
	b.push(func() {
		g := out.grad
		if g == nil {
			return
		}
		dg, du := b.like(gate, "dgate", gate.shape), b.like(up, "dup", up.shape)
		b.emit(ir.Op{Op: ir.OpSwiGLUGrad, In: syms([]*val{gate, up, g}), Out: syms([]*val{dg, du})})
		b.accum(gate, dg)
		b.accum(up, du)
	})
	return out
}

// embed is the vocab-parallel lookup: a partial sum over TP (tokens of other ranks' vocab
// blocks give zero rows).
func (b *builder) embed(ids, w *val) *val {
	lo, _ := b.l.vocabRange(b.c.tp)
	out := &val{sym: b.newSym("embed"), shape: append(slices.Clone(ids.shape), w.shape[1]), pl: part}
	if b.l.tp == 1 {
		out.pl = rep
	}
	b.op(ir.OpEmbedding, []*val{ids, w}, ir.Ints("offset", lo), out)
	b.push(func() {
		g := out.grad
		if g == nil {
			return
		}
		mustPlace(g, rep, "gradient of an embedding output")
		dw := &val{sym: b.newSym("dembed_w"), shape: w.shape, pl: w.pl, dim: w.dim, block: w.block, gsize: w.gsize}
		b.op(ir.OpEmbeddingGrad, []*val{ids, g}, ir.Ints("offset", lo, "rows", w.shape[0]), dw)
		b.accum(w, dw)
	})
	return out
}

// crossEntropy is Megatron's vocab-parallel cross-entropy of sharded logits [.., Vb]: the row
// max and the sum of exponentials over the real vocab columns are all-reduced (max, sum), as is
// the target logit, which only its owner holds. weights carry each token's share of the loss
// (mask/denominator; 0 for ignored tokens) and coef the loss's weight in the objective. The
// returned scalar is replicated over TP. gradRole tags the ce_grad op (RoleMTPLossGrad for an
// MTP depth, whose scale is λ/D).
func (b *builder) crossEntropy(logits, labels, weights *val, coef float64, gradRole string) *val {
	lo, valid := b.l.vocabRange(b.c.tp)
	rows := logits.shape[:len(logits.shape)-1]
	rowVal := func(hint string) *val { return &val{sym: b.newSym(hint), shape: slices.Clone(rows)} }
	m := b.op(ir.OpVocabMax, []*val{logits}, ir.Ints("valid", valid), rowVal("ce_max"))
	m = b.allReduceRaw(m, ir.ReduceMax, "ce.max")
	s := b.op(ir.OpVocabSumExp, []*val{logits, m}, ir.Ints("valid", valid), rowVal("ce_sumexp"))
	s = b.allReduceRaw(s, ir.ReduceSum, "ce.sumexp")
	t := b.op(ir.OpVocabTarget, []*val{logits, labels}, ir.Ints("offset", lo, "valid", valid), rowVal("ce_target"))
	t = b.allReduceRaw(t, ir.ReduceSum, "ce.target")
	loss := b.op(ir.OpCELoss, []*val{m, s, t, weights}, ir.Attrs{}, &val{sym: b.newSym("loss"), shape: []int{}})
	b.push(func() {
		a := ir.Ints("offset", lo, "valid", valid)
		a.Floats = map[string]float64{"scale": coef}
		dz := b.like(logits, "dlogits", logits.shape)
		b.op(ir.OpCEGrad, []*val{logits, m, s, labels, weights}, a, dz)
		b.ops[len(b.ops)-1].Role = gradRole
		b.accum(logits, dz)
	})
	return loss
}

// ---- TP collectives and their adjoints (Megatron-LM megatron/core/tensor_parallel/mappings.py) ----

func (b *builder) tpCollective(name string, x *val, a ir.Attrs, out *val, role string) *val {
	b.emit(ir.Op{Op: name, In: []string{x.sym}, Out: []string{out.sym}, Attr: a, Group: b.l.tpGroup(b.c), Role: role})
	return out
}

func (b *builder) allReduceRaw(x *val, how, role string) *val {
	if b.l.tp == 1 {
		return x
	}
	out := &val{sym: b.newSym("allreduce"), shape: x.shape, pl: rep}
	return b.tpCollective(ir.OpAllReduce, x, ir.Attrs{Strs: map[string]string{"reduce": how}}, out, role)
}

// copyTP is Megatron's copy_to_tensor_model_parallel_region: identity forward; backward
// all-reduces the partial gradients of the column-parallel linears reading it.
func (b *builder) copyTP(x *val) *val {
	if b.l.tp == 1 || x.gathered {
		return x
	}
	mustPlace(x, rep, "input of copy_to_tensor_model_parallel_region")
	out := &val{sym: x.sym, shape: x.shape, pl: rep}
	b.push(func() {
		g := out.grad
		if g != nil && g.pl == part {
			g = b.allReduceRaw(g, ir.ReduceSum, "tp.copy.bwd")
		}
		b.accum(x, g)
	})
	return out
}

// reduceTP is reduce_from_tensor_model_parallel_region: all-reduce forward, identity backward.
func (b *builder) reduceTP(x *val, role string) *val {
	if b.l.tp == 1 {
		return x
	}
	mustPlace(x, part, "input of an all-reduce")
	out := b.allReduceRaw(x, ir.ReduceSum, role)
	b.push(func() {
		if g := out.grad; g != nil {
			mustPlace(g, rep, "gradient of an all-reduce output")
			b.accum(x, g)
		}
	})
	return out
}

// seqShard marks v as this rank's block of the padded sequence (dim 1).
func (b *builder) seqShard(v *val) *val {
	v.pl, v.dim, v.block, v.gsize = shrd, 1, b.l.seqBlock, b.l.p.Seq
	return v
}

// reduceScatterSeq is reduce_scatter_to_sequence_parallel_region on a partial [B,Sp,H]:
// TP rank t gets rows [t·L, (t+1)·L) of the sum; backward all-gathers.
func (b *builder) reduceScatterSeq(x *val, role string) *val {
	mustPlace(x, part, "input of a reduce-scatter")
	out := b.seqShard(&val{sym: b.newSym("reduce_scatter"), shape: withDim(x.shape, 1, b.l.seqBlock)})
	b.tpCollective(ir.OpReduceScatter, x, ir.Ints("dim", 1), out, role)
	b.push(func() { b.gatherSeqGrad(x, out.grad, role, "gradient of a reduce-scatter output") })
	return out
}

// gatherSeqGrad accumulates into x the all-gather (dim 1) of a sequence-sharded gradient g:
// the adjoint of every op that cut x into this rank's rows.
func (b *builder) gatherSeqGrad(x, g *val, role, what string) {
	if g == nil {
		return
	}
	mustPlace(g, shrd, what)
	ag := &val{sym: b.newSym("all_gather"), shape: x.shape, pl: rep}
	b.accum(x, b.tpCollective(ir.OpAllGather, g, ir.Ints("dim", 1), ag, role+".bwd"))
}

// ownSeqRows is this TP rank's rows rank·L…(rank+1)·L of a replicated [B,Sp,…] value.
func (b *builder) ownSeqRows(x *val) *val {
	return b.seqShard(b.narrowRaw(x, 1, b.c.tp*b.l.seqBlock, b.l.seqBlock))
}

// gatherSeq is gather_from_sequence_parallel_region: all-gather of the sequence shards. Its
// adjoint depends on the gradient: a partial one (column-parallel linears read the output) is
// reduce-scattered, a replicated one is split (each rank keeps its own rows).
func (b *builder) gatherSeq(x *val, role string) *val {
	mustPlace(x, shrd, "input of a sequence all-gather")
	out := &val{sym: b.newSym("all_gather"), shape: withDim(x.shape, 1, b.l.seqPad), pl: rep, gathered: true}
	b.tpCollective(ir.OpAllGather, x, ir.Ints("dim", 1), out, role)
	b.push(func() {
		g := out.grad
		if g == nil {
			return
		}
		var dx *val
		if g.pl == part {
			dx = b.seqShard(&val{sym: b.newSym("reduce_scatter"), shape: x.shape})
			b.tpCollective(ir.OpReduceScatter, g, ir.Ints("dim", 1), dx, role+".bwd")
		} else {
			dx = b.ownSeqRows(g)
		}
		b.accum(x, dx)
	})
	return out
}

// scatterSeq is scatter_to_sequence_parallel_region: a replicated [B,Sp,H] cut to this rank's
// rows — the rank-aware slice rank·L…(rank+1)·L (vLLM's fix for seed 002). Its adjoint
// all-gathers.
func (b *builder) scatterSeq(x *val, role string) *val {
	mustPlace(x, rep, "input of a sequence scatter")
	out := b.ownSeqRows(x)
	b.ops[len(b.ops)-1].Role = role
	b.push(func() { b.gatherSeqGrad(x, out.grad, role, "gradient of a sequence scatter") })
	return out
}

// gatherLast is gather_from_tensor_model_parallel_region on a column-parallel output: all-gather
// of the last dim; backward splits (each rank keeps its columns) — the adjoint Megatron's MTP
// eh_proj needs (Megatron-LM 06e9f28b30, !3594); a partial gradient would be reduce-scattered instead.
func (b *builder) gatherLast(x *val, role string) *val {
	mustPlace(x, shrd, "input of a last-dim all-gather")
	d := len(x.shape) - 1
	out := &val{sym: b.newSym("all_gather"), shape: withDim(x.shape, d, x.gsize), pl: rep}
	b.tpCollective(ir.OpAllGather, x, ir.Ints("dim", d), out, role)
	b.push(func() {
		g := out.grad
		if g == nil {
			return
		}
		n := x.shape[d]
		dx := b.like(x, "split", x.shape)
		if g.pl == part {
			b.tpCollective(ir.OpReduceScatter, g, ir.Ints("dim", d), dx, role+".bwd")
		} else {
			b.op(ir.OpNarrow, []*val{g}, ir.Ints("dim", d, "start", b.c.tp*n, "len", n), dx)
			b.ops[len(b.ops)-1].Role = role + ".bwd"
		}
		b.accum(x, dx)
	})
	return out
}

// ---- tracing ----

// tpItem is v's placement item on the tp axis ("" when replicated or tp = 1).
func (b *builder) tpItem(v *val) string {
	if b.l.tp == 1 {
		return ""
	}
	switch v.pl {
	case shrd:
		if v.block > 0 {
			return fmt.Sprintf("tp=shard(%d,block=%d)", v.dim, v.block)
		}
		return fmt.Sprintf("tp=shard(%d)", v.dim)
	case part:
		return "tp=partial"
	}
	return ""
}

// globalShape is v's logical shape: batch rows of the whole batch, sharded dims at full size.
func (b *builder) globalShape(v *val, batch bool) []int {
	g := slices.Clone(v.shape)
	if g == nil {
		g = []int{}
	}
	if batch {
		g[0] = b.l.p.Batch
	}
	if v.pl == shrd && b.l.tp > 1 {
		g[v.dim] = v.gsize
	}
	return g
}

func joinPlace(items ...string) string {
	var out []string
	for _, s := range items {
		if s != "" {
			out = append(out, s)
		}
	}
	return strings.Join(out, ",")
}

// traceAs records v in the trace under name.
func (b *builder) traceAs(v *val, name, kind, place string, global []int, perMB bool) {
	key := name
	var c map[string]int
	if perMB {
		key = fmt.Sprintf("%s@mb%d", name, b.mb)
		c = map[string]int{AxisMB: b.mb}
	}
	b.emit(ir.Op{Op: ir.OpTrace, In: []string{v.sym}, Trace: &ir.Tag{Key: key, Name: name, Kind: kind,
		Order: b.order, Place: place, Shape: global, Coord: c}})
	b.order++
}

// act traces a per-micro-batch activation [rows, …] as act/name now and its gradient as
// agrad/name when the backward has completed it.
func (b *builder) act(v *val, name string) *val {
	b.traceAs(v, "act/"+name, "activation", b.batchPlace(v), b.globalShape(v, true), true)
	mb := b.mb
	b.push(func() {
		if v.grad == nil {
			return
		}
		saved := b.mb
		b.mb = mb
		b.traceAs(v.grad, "agrad/"+name, "activation_grad", b.batchPlace(v.grad), b.globalShape(v.grad, true), true)
		b.mb = saved
	})
	return v
}

func (b *builder) batchPlace(v *val) string {
	return joinPlace("dp=shard(0)", "mb=shard(0)", "pp=stage", b.tpItem(v))
}
