package simulate

import (
	"fmt"
	"github.com/spcheck/spcheck/model"
	"maps"
	"slices"
	"strings"

	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// MaxWorld bounds the ranks of a simulated plan: one goroutine and one program each, so a
// mistyped plan cannot exhaust memory before anything runs (4096 ranks of a small model verify
// in well under a minute on 2 cores).
const MaxWorld = 1 << 14

// Compiled is a plan compiled into one program per rank, with the tensors each rank starts
// from (its parameter shards and its micro-batches' inputs).
type Compiled struct {
	Plan     plan.Plan
	Programs []*ir.Program
	Init     []map[string]*tensor.Dense
	// Generated describes, per rank, the starting tensors that are parameter shards: how to
	// generate each from the counter RNG (an executor generates them itself instead of reading
	// files). Compile also puts their values in Init; CompileGenerated leaves them out.
	Generated []map[string]Generated
	// genInit is, per rank, the tensor Compile generated for each Generated symbol: Init still
	// holds it unless a bug variant replaced it (WriteDir then writes the replacement).
	genInit []map[string]*tensor.Dense
	// Regions are, per rank, the forward of every layer it runs (one per micro-batch), the
	// unit of activation recompute (Recompute).
	Regions [][]Region
	// Dump, when set, says which traced tensors each rank stores as fingerprints
	// (trace.Writer.SetDump); nil stores them all in full.
	Dump *trace.Dump
	l    *layout
}

// Compile turns a valid plan into per-rank programs and their starting tensors: parameter
// shards cut from the model's initial values (model.InitParam) and micro-batch inputs cut
// from its batch (model.MakeInputs), the data the oracle starts from too. v is the bug variant
// p.Bug names (nil when it names none); Compile applies its rewrites.
func Compile(p plan.Plan, v *Variant) (*Compiled, error) { return compilePlan(p, v, false) }

// CompileGenerated compiles like Compile but leaves the parameter shards out of Init:
// Generated says how to make each, and nothing of size hidden² is held in memory. For emitting
// plans whose executor generates its own parameters (WriteDir, cuda/); a bug variant that
// replaces a parameter's starting tensor still puts it in Init.
func CompileGenerated(p plan.Plan, v *Variant) (*Compiled, error) { return compilePlan(p, v, true) }

func compilePlan(p plan.Plan, v *Variant, lazy bool) (c *Compiled, err error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	if w := p.World(); w > MaxWorld {
		return nil, fmt.Errorf("simulate: plan %q has %d ranks; the simulator runs at most %d", p.String(), w, MaxWorld)
	}
	if err := checkVariant(p, v); err != nil {
		return nil, err
	}
	if v == nil {
		return compile(p, p, lazy)
	}
	q := p
	q.Packed = slices.Clone(p.Packed)
	if v.Plan != nil {
		v.Plan(&q)
		if err := q.Validate(); err != nil {
			return nil, fmt.Errorf("simulate: bug variant %s makes an invalid plan: %w", v.Name, err)
		}
	}
	if c, err = compile(q, p, lazy); err != nil {
		return nil, err
	}
	if v.Programs != nil {
		if err := v.Programs(c); err != nil {
			return nil, fmt.Errorf("simulate: bug variant %s: %w", v.Name, err)
		}
		for _, prog := range c.Programs {
			if err := prog.Validate(); err != nil {
				return nil, fmt.Errorf("simulate: bug variant %s: %w", v.Name, err)
			}
		}
	}
	return c, nil
}

// compile lays out p (the plan as rewritten by a bug variant); c.Plan and the programs keep the
// plan as given (orig), so traces print the string that reproduces them.
func compile(p, orig plan.Plan, lazy bool) (c *Compiled, err error) {
	l := newLayout(p)
	l.lazyParams = lazy
	data := newBatch(p.Model)
	c = &Compiled{Plan: orig, l: l, Programs: make([]*ir.Program, l.world()), Init: make([]map[string]*tensor.Dense, l.world()),
		Generated: make([]map[string]Generated, l.world()), genInit: make([]map[string]*tensor.Dense, l.world()),
		Regions: make([][]Region, l.world())}
	defer func() { // a planner bug (an inconsistent placement) is a panic; name the plan
		if v := recover(); v != nil {
			c, err = nil, fmt.Errorf("simulate: compiling %q: %v", p.String(), v)
		}
	}()
	for r := range c.Programs {
		b := newBuilder(l, r)
		b.build(data)
		prog := &ir.Program{Format: ir.Format, Version: ir.Version, Plan: orig.String(), Rank: r, World: l.world(),
			Mesh: l.irMesh(), Coord: map[string]int{AxisDP: b.c.dp, AxisPP: b.c.pp, AxisTP: b.c.tp},
			Inputs: b.inputs, Ops: b.ops}
		ir.InsertFrees(prog)
		c.Programs[r], c.Init[r], c.Regions[r] = prog, b.init, b.regions
		c.Generated[r], c.genInit[r] = b.gen, maps.Clone(b.init)
	}
	return c, nil
}

// batch is the whole batch's inputs as the oracle builds them, and the per-token loss
// weights of the main head and of every MTP depth.
type batch struct {
	in      model.Inputs
	weights *tensor.Dense
	depths  []depthInputs
}

type depthInputs struct{ ids, labels, mask, weights *tensor.Dense }

func newBatch(m plan.Model) *batch {
	in := model.MakeInputs(m)
	bt := &batch{in: in, weights: lossWeights(in.Labels, in.LossMask)}
	for k := 1; k <= m.MTP; k++ { // the oracle's per-sequence rolls (Megatron's roll_tensor, 0 fill)
		d := depthInputs{
			ids:    nn.RollSequences(in.IDs, in.CuSeqlens, k, 0),
			labels: nn.RollSequences(in.Labels, in.CuSeqlens, k, 0),
			mask:   nn.RollSequences(in.LossMask, in.CuSeqlens, k, 0),
		}
		d.weights = lossWeights(d.labels, d.mask)
		bt.depths = append(bt.depths, d)
	}
	return bt
}

// lossWeights is each token's share of a masked-mean loss over the whole batch:
// mask·[label ≠ −100] / max(Σ, 1), nn.CrossEntropy's weights over its denominator. Micro-batch
// and replica losses Σ w·ℓ then add up to the oracle's loss.
func lossWeights(labels, mask *tensor.Dense) *tensor.Dense {
	lab := make([]int, len(labels.Data))
	for i, v := range labels.Data {
		lab[i] = int(v)
	}
	w := nn.LossWeights(lab, mask.Data)
	_, denom := nn.MaskedMean(make([]float64, len(w)), w)
	out := tensor.New(labels.Shape...)
	for i, v := range w {
		out.Data[i] = v / denom
	}
	return out
}

// build emits the rank's whole program.
func (b *builder) build(data *batch) {
	cu := data.in.CuSeqlens
	cuT := tensor.New(len(cu))
	for i, v := range cu {
		cuT.Data[i] = float64(v)
	}
	b.traceAs(b.input("input/cu_seqlens", cuT), "input/cu_seqlens", "input", "", []int{len(cu)}, false)
	names := b.loadParams()
	p := &pipeline{b: b, data: func(m int) *mbData { return b.loadMicroBatch(data, m) }}
	p.run()
	b.finishGrads(names)
}

// stageHolds says whether this rank's stage holds parameter name.
func (b *builder) stageHolds(name string) bool {
	s, last := b.c.pp, b.c.pp == b.l.pp-1
	switch {
	case name == "embedding.weight":
		return s == 0 || (last && (b.l.p.Tied || b.l.p.MTP > 0))
	case strings.HasPrefix(name, "layers."):
		var i int
		fmt.Sscanf(name, "layers.%d.", &i)
		return i >= b.l.stageLayers[s] && i < b.l.stageLayers[s+1]
	}
	return last // final norm, LM head, MTP depths
}

// loadParams makes this rank's parameter shards program inputs and traces them, in the
// oracle's parameter order; it returns their names.
func (b *builder) loadParams() []string {
	var names []string
	for _, ps := range model.ParamShapes(b.l.p.Model) {
		if !b.stageHolds(ps.Name) {
			continue
		}
		v := b.paramShard(ps)
		b.params[ps.Name] = v
		b.traceAs(v, "param/"+ps.Name, "param", joinPlace("pp=stage", b.tpItem(v)), slices.Clone(ps.Shape), false)
		names = append(names, ps.Name)
	}
	return names
}

// paramSplit is how a parameter is split over TP (Megatron): vocab-parallel embedding and LM
// head (rows, padded blocks), column-parallel q, k, v, gate, up and eh_proj (rows),
// row-parallel o and down (columns), replicated norms.
func (l *layout) paramSplit(name string) (pl tpPlace, dim, n, block int) {
	if l.tp == 1 {
		return rep, 0, 0, 0
	}
	t := func(s ...string) bool {
		for _, x := range s {
			if strings.HasSuffix(name, x) {
				return true
			}
		}
		return false
	}
	switch {
	case t("embedding.weight", "lm_head.weight"):
		return shrd, 0, 0, l.vocabBlk
	case t("attn.q.weight", "attn.k.weight", "attn.v.weight", "eh_proj.weight"):
		return shrd, 0, l.hiddenLoc, 0
	case t("mlp.gate.weight", "mlp.up.weight"):
		return shrd, 0, l.ffnLoc, 0
	case t("attn.o.weight"):
		return shrd, 1, l.hiddenLoc, 0
	case t("mlp.down.weight"):
		return shrd, 1, l.ffnLoc, 0
	}
	return rep, 0, 0, 0
}

// paramShard is this rank's shard of a parameter, cut from the model's initial value (each
// parameter is generated once per compilation and shared by the ranks that hold a piece);
// vocab padding rows are zero. The shard is also recorded as Generated; under
// CompileGenerated only that record is made.
func (b *builder) paramShard(ps model.ParamSpec) *val {
	pl, dim, n, block := b.l.paramSplit(ps.Name)
	v := &val{sym: "param/" + ps.Name, pl: pl, param: ps.Name}
	gen := Generated{Name: "param/" + ps.Name, Shape: slices.Clone(ps.Shape), Len: ps.Shape[0], Rule: model.InitRuleOf(ps.Name, ps.Shape)}
	switch {
	case pl == rep:
	case block > 0: // vocab rows, padded
		lo, real := b.l.vocabRange(b.c.tp)
		gen.Start, gen.Len, gen.Pad = lo, real, block-real
		v.dim, v.block, v.gsize = 0, block, ps.Shape[0]
	default: // an even split of dim (0: rows, 1: columns)
		gen.Dim, gen.Start, gen.Len = dim, b.c.tp*n, n
		v.dim, v.gsize = dim, ps.Shape[dim]
	}
	v.shape = gen.LocalShape()
	b.inputs = append(b.inputs, v.sym)
	b.gen[v.sym] = gen
	if !b.l.lazyParams {
		b.init[v.sym] = gen.cut(b.l.fullParam(ps))
	}
	return v
}

// fullParam is a parameter's initial value (model.InitParam), generated on first use.
func (l *layout) fullParam(ps model.ParamSpec) *tensor.Dense {
	t := l.paramCache[ps.Name]
	if t == nil {
		t = model.InitParam(l.p.Model, ps.Name, ps.Shape)
		l.paramCache[ps.Name] = t
	}
	return t
}

// loadMicroBatch makes micro-batch m's inputs this rank needs program inputs and traces them:
// ids on the first stage; labels, loss masks and weights (main and per depth) on the last.
func (b *builder) loadMicroBatch(data *batch, m int) *mbData {
	lo := b.l.batchRows(b.c.dp, m)
	rows := func(t *tensor.Dense) *tensor.Dense { return t.Narrow(0, lo, b.l.rows) }
	d := &mbData{}
	in := func(name string, t *tensor.Dense, traced bool) *val {
		v := b.input(fmt.Sprintf("%s@mb%d", name, m), rows(t))
		if traced {
			b.traceAs(v, name, "input", "dp=shard(0),mb=shard(0),pp=stage", slices.Clone(t.Shape), true)
		}
		return v
	}
	if b.first() {
		d.ids = in("input/ids", data.in.IDs, true)
	}
	if b.last() {
		d.labels = in("input/labels", data.in.Labels, true)
		in("input/loss_mask", data.in.LossMask, true)
		d.weights = in("weights/main", data.weights, false)
		for k, dep := range data.depths {
			n := fmt.Sprintf("input/mtp.%d.", k+1)
			md := &mtpData{ids: in(n+"ids", dep.ids, true), labels: in(n+"labels", dep.labels, true)}
			in(n+"loss_mask", dep.mask, true)
			md.weights = in(fmt.Sprintf("weights/mtp.%d", k+1), dep.weights, false)
			d.mtp = append(d.mtp, md)
		}
	}
	return d
}

// Describe summarises the layout: world, stages, shard sizes and paddings.
func (c *Compiled) Describe() string {
	l := c.l
	var stages []string
	for s := 0; s < l.pp; s++ {
		stages = append(stages, fmt.Sprintf("[%d,%d)", l.stageLayers[s], l.stageLayers[s+1]))
	}
	s := fmt.Sprintf("world %d = dp %d × pp %d × tp %d (rank = (dp·%d + pp)·%d + tp); %d micro-batch(es) of %d row(s) per replica, %s schedule\n",
		l.world(), l.dp, l.pp, l.tp, l.pp, l.tp, l.mbs, l.rows, l.p.Schedule)
	s += fmt.Sprintf("stages hold layers %s", strings.Join(stages, " "))
	if l.lastHoldsEmbedding() {
		s += "; the last stage holds a copy of the embedding (grads summed over the embedding group)"
	}
	s += fmt.Sprintf("\nvocab %d in blocks of %d per TP rank", l.p.Vocab, l.vocabBlk)
	if pad := l.vocabBlk*l.tp - l.p.Vocab; pad > 0 {
		s += fmt.Sprintf(" (%d padding rows, kept out of the softmax)", pad)
	}
	switch l.sp {
	case plan.SPOff:
		s += "; no sequence parallelism"
	default:
		s += fmt.Sprintf("; sequence parallel (%s): %d tokens padded to %d, %d per TP rank", l.sp, l.p.Seq, l.seqPad, l.seqBlock)
	}
	if l.p.PartialP2P && l.tp > 1 && l.pp > 1 {
		if l.sp == plan.SPOff {
			s += "\npartial P2P: each TP rank sends flat chunk tp_rank of a replicated boundary tensor, the receiver all-gathers (full send when numel % tp ≠ 0)"
		} else {
			s += "\npartial P2P requested but kept off for sequence shards (they differ across TP: the SP guard)"
		}
	}
	return s
}
