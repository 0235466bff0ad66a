package fuzz

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/leanovate/gopter"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
)

// Region is one communication region as the planner uses it (docs/ir.md; the collectives of
// Megatron-LM megatron/core/tensor_parallel/mappings.py with their autograd backwards):
// a forward redistribution over a TP group, or a hand-off to the next pipeline stage, and
// the backward the planner emits for it, with the layouts of the value and of its gradient
// on either side. Every region is a logical identity (it moves a value, it does not change
// it), so three laws must hold for any group size, shape and value:
//
//   - forward: the output stands for the input (bit for bit: reductions run in group-rank
//     order both in the runtime and in Layout.Logical);
//   - backward: likewise the gradient;
//   - adjoint: ⟨F x, g⟩ = ⟨x, B g⟩ — the dot-product test that catches a wrong adjoint
//     whatever the op (e.g. an all-gather whose backward reduce-scatters a replicated
//     gradient: ×tp).
type Region struct {
	Name string // the framework's name for it
	// FwdRoles and BwdRoles are the simulate roles of the planner's ops for this region, and
	// FwdOps/BwdOps their IR op kinds (TestRegionsCoverThePlanner checks them against
	// compiled programs).
	FwdRoles, BwdRoles []string
	FwdOps, BwdOps     []string
	In, Out            Layout // the value, before and after
	GradOut, GradIn    Layout // its gradient, arriving and leaving
	Stages             int    // 2: the value moves to the next stage's group
	Dim                int    // the dim the region works on (sizes along it are multiplied by n where it cuts)
	Cuts               bool   // the input's Dim (or, for a flat chunking, its numel) must divide by n
	Fwd                func(m *mini, x gval) gval
	Bwd                func(m *mini, g gval) gval // nil: the region has no backward (a final gradient reduction, the CE max)
}

func rep() Layout                   { return Layout{Kind: Replicated} }
func shard(d int) Layout            { return Layout{Kind: Sharded, Dim: d} }
func partial() Layout               { return Layout{Kind: PartialSum} }
func identity(_ *mini, x gval) gval { return x }

// Regions lists the planner's regions (and the two the planner does not emit but
// frameworks do: the all-gather whose partial gradient is reduce-scattered on the last dim,
// and broadcast).
var Regions = []Region{
	{Name: "reduce_from_tensor_model_parallel_region (row-parallel output, vocab-parallel embedding, CE sums, gradient sums)",
		FwdRoles: []string{simulate.RoleRowReduce, simulate.RoleEmbedReduce, "ce.sumexp", "ce.target",
			simulate.RoleGradTPSum, simulate.RoleGradDPSum, simulate.RoleGradEmbeddingSum},
		FwdOps: []string{ir.OpAllReduce}, In: partial(), Out: rep(), GradOut: rep(), GradIn: rep(), Stages: 1,
		Fwd: func(m *mini, x gval) gval { return m.allReduce(x, ir.ReduceSum) }, Bwd: identity},
	{Name: "vocab-parallel cross-entropy row max", FwdRoles: []string{"ce.max"}, FwdOps: []string{ir.OpAllReduce},
		In: Layout{Kind: PartialMax}, Out: rep(), Stages: 1,
		Fwd: func(m *mini, x gval) gval { return m.allReduce(x, ir.ReduceMax) }},
	{Name: "copy_to_tensor_model_parallel_region", BwdRoles: []string{"tp.copy.bwd"}, BwdOps: []string{ir.OpAllReduce},
		In: rep(), Out: rep(), GradOut: partial(), GradIn: rep(), Stages: 1,
		Fwd: identity, Bwd: func(m *mini, g gval) gval { return m.allReduce(g, ir.ReduceSum) }},
	{Name: "reduce_scatter_to_sequence_parallel_region",
		FwdRoles: []string{simulate.RoleRowReduce, simulate.RoleEmbedReduce}, FwdOps: []string{ir.OpReduceScatter},
		BwdRoles: []string{simulate.RoleRowReduce + ".bwd", simulate.RoleEmbedReduce + ".bwd"}, BwdOps: []string{ir.OpAllGather},
		In: partial(), Out: shard(1), GradOut: shard(1), GradIn: rep(), Stages: 1, Dim: 1, Cuts: true,
		Fwd: func(m *mini, x gval) gval { return m.reduceScatter(x, 1) },
		Bwd: func(m *mini, g gval) gval { return m.allGather(g, 1) }},
	{Name: "gather_from_sequence_parallel_region (column-parallel readers: partial gradient)",
		FwdRoles: []string{simulate.RoleSeqGather}, FwdOps: []string{ir.OpAllGather},
		BwdRoles: []string{simulate.RoleSeqGather + ".bwd"}, BwdOps: []string{ir.OpReduceScatter},
		In: shard(1), Out: rep(), GradOut: partial(), GradIn: shard(1), Stages: 1, Dim: 1,
		Fwd: func(m *mini, x gval) gval { return m.allGather(x, 1) },
		Bwd: func(m *mini, g gval) gval { return m.reduceScatter(g, 1) }},
	{Name: "gather_from_sequence_parallel_region (replicated gradient: split)",
		FwdRoles: []string{simulate.RoleResidualGather}, FwdOps: []string{ir.OpAllGather},
		In: shard(1), Out: rep(), GradOut: rep(), GradIn: shard(1), Stages: 1, Dim: 1,
		Fwd: func(m *mini, x gval) gval { return m.allGather(x, 1) },
		Bwd: func(m *mini, g gval) gval { return m.narrowRankAware(g, 1) }},
	{Name: "scatter_to_sequence_parallel_region (rank-aware slice)",
		FwdRoles: []string{simulate.RoleResidualSlice, simulate.RoleMTPScatter}, FwdOps: []string{ir.OpNarrow},
		BwdRoles: []string{simulate.RoleResidualSlice + ".bwd", simulate.RoleMTPScatter + ".bwd"}, BwdOps: []string{ir.OpAllGather},
		In: rep(), Out: shard(1), GradOut: shard(1), GradIn: rep(), Stages: 1, Dim: 1, Cuts: true,
		Fwd: func(m *mini, x gval) gval { return m.narrowRankAware(x, 1) },
		Bwd: func(m *mini, g gval) gval { return m.allGather(g, 1) }},
	{Name: "gather_from_tensor_model_parallel_region (MTP eh_proj: split backward)",
		FwdRoles: []string{simulate.RoleEHProjGather}, FwdOps: []string{ir.OpAllGather},
		BwdRoles: []string{simulate.RoleEHProjGather + ".bwd"}, BwdOps: []string{ir.OpNarrow},
		In: shard(2), Out: rep(), GradOut: rep(), GradIn: shard(2), Stages: 1, Dim: 2,
		Fwd: func(m *mini, x gval) gval { return m.allGather(x, 2) },
		Bwd: func(m *mini, g gval) gval { return m.narrowRankAware(g, 2) }},
	{Name: "all_gather_last_dim_from_tensor_parallel_region (partial gradient)",
		In: shard(2), Out: rep(), GradOut: partial(), GradIn: shard(2), Stages: 1, Dim: 2,
		Fwd: func(m *mini, x gval) gval { return m.allGather(x, 2) },
		Bwd: func(m *mini, g gval) gval { return m.reduceScatter(g, 2) }},
	{Name: "broadcast (backward: sum to the root)", In: Layout{Kind: OnRoot}, Out: rep(), GradOut: partial(),
		GradIn: Layout{Kind: OnRoot}, Stages: 1, FwdOps: []string{ir.OpBroadcast},
		Fwd: func(m *mini, x gval) gval { return m.broadcast(x) },
		Bwd: func(m *mini, g gval) gval { return keepRoot(m.allReduce(g, ir.ReduceSum)) }},
	{Name: "send_forward/recv_forward of a replicated boundary tensor (gradient back by send_backward)",
		FwdRoles: []string{simulate.RoleSendForward, simulate.RoleRecvForward}, FwdOps: []string{ir.OpP2P},
		BwdRoles: []string{simulate.RoleSendBackward, simulate.RoleRecvBackward}, BwdOps: []string{ir.OpP2P},
		In: rep(), Out: rep(), GradOut: rep(), GradIn: rep(), Stages: 2,
		Fwd: func(m *mini, x gval) gval { return m.send(x, 1) },
		Bwd: func(m *mini, g gval) gval { return m.send(g, 0) }},
	{Name: "send_forward/recv_forward of a sequence shard (sent whole: the partial-P2P guard)",
		FwdRoles: []string{simulate.RoleSendForward, simulate.RoleRecvForward}, FwdOps: []string{ir.OpP2P},
		BwdRoles: []string{simulate.RoleSendBackward, simulate.RoleRecvBackward}, BwdOps: []string{ir.OpP2P},
		In: shard(1), Out: shard(1), GradOut: shard(1), GradIn: shard(1), Stages: 2, Dim: 1,
		Fwd: func(m *mini, x gval) gval { return m.send(x, 1) },
		Bwd: func(m *mini, g gval) gval { return m.send(g, 0) }},
	{Name: "partial send/recv (flat chunk, send, all-gather) of a replicated boundary tensor",
		FwdRoles: []string{simulate.RolePartialChunk, simulate.RolePartialGather, simulate.RoleSendForward, simulate.RoleRecvForward},
		FwdOps:   []string{ir.OpFlatChunk, ir.OpAllGatherFlat, ir.OpP2P},
		BwdRoles: []string{simulate.RolePartialChunk, simulate.RolePartialGather, simulate.RoleSendBackward, simulate.RoleRecvBackward},
		BwdOps:   []string{ir.OpFlatChunk, ir.OpAllGatherFlat, ir.OpP2P},
		In:       rep(), Out: rep(), GradOut: rep(), GradIn: rep(), Stages: 2, Dim: 2, Cuts: true,
		Fwd: func(m *mini, x gval) gval { return m.partialSend(x, 1) },
		Bwd: func(m *mini, g gval) gval { return m.partialSend(g, 0) }},
}

// keepRoot drops every rank's tensor but group rank 0's (an on-root result).
func keepRoot(x gval) gval {
	for t := 1; t < len(x.syms); t++ {
		x.syms[t], x.shapes[t] = "", nil
	}
	return x
}

// AlgebraCase is one random instance of a law: which law, the group size, the local shape of
// the region's input and the values' seed.
type AlgebraCase struct {
	Law   int // index into Laws()
	N     int
	Shape []int
	Seed  uint64
}

func (c AlgebraCase) String() string {
	return fmt.Sprintf("%s, n=%d, shape %v, seed %d", Laws()[c.Law].Name, c.N, c.Shape, c.Seed)
}

// Law is a named check of one algebra case.
type Law struct {
	Name  string
	Check func(c AlgebraCase) error
}

// Laws are the region laws (one per region) and the composition all-gather ∘ reduce-scatter =
// all-reduce.
func Laws() []Law {
	out := make([]Law, 0, len(Regions)+1)
	for _, r := range Regions {
		out = append(out, Law{Name: r.Name, Check: func(c AlgebraCase) error { return CheckRegion(r, c.N, c.Shape, c.Seed) }})
	}
	return append(out, Law{Name: "all_gather ∘ reduce_scatter = all_reduce", Check: func(c AlgebraCase) error {
		return checkGatherScatter(c.N, c.Shape, c.Seed)
	}})
}

// adjointTol bounds |⟨F x, g⟩ − ⟨x, B g⟩| relative to Σ|terms| of both dot products: the two
// sums add the same O(1) products in different orders, so they differ by at most about
// numel·ε ≈ 1e-13 for the few hundred elements of a case (float64 ε = 2.2e-16).
const adjointTol = 1e-11

// CheckRegion runs region r on n ranks per stage from an input of the given local shape and
// checks its laws. The shape's r.Dim is multiplied by n where the region cuts it.
func CheckRegion(r Region, n int, shape []int, seed uint64) error {
	in := shape
	if r.Cuts {
		in = withDim(shape, r.Dim, shape[r.Dim]*n)
	}
	m := newMini(n, r.Stages)
	xs := r.In.Random(seed, "x", n, in)
	y := r.Fwd(m, m.input(0, xs))
	m.trace(y, "y")
	fwd, err := m.run()
	if err != nil {
		return fmt.Errorf("forward does not run: %w", err)
	}
	x, err := r.In.Logical(xs)
	if err != nil {
		return err
	}
	fy, err := r.Out.Logical(fwd["y"])
	if err != nil {
		return fmt.Errorf("forward law: output: %w", err)
	}
	if !tensor.BitEqual(fy, x) {
		return fmt.Errorf("forward law: the %s output does not stand for the %s input (%s)", r.Out, r.In, mismatch(fy, x))
	}
	if r.Bwd == nil {
		return nil
	}
	// The backward runs in a second program set whose gradient has the output's local shapes.
	m = newMini(n, r.Stages)
	gs := r.GradOut.Random(seed, "g", n, y.shapes[0])
	gx := r.Bwd(m, m.input(y.stage, gs))
	m.trace(gx, "gx")
	bwd, err := m.run()
	if err != nil {
		return fmt.Errorf("backward does not run: %w", err)
	}
	g, err := r.GradOut.Logical(gs)
	if err != nil {
		return err
	}
	bg, err := r.GradIn.Logical(bwd["gx"])
	if err != nil {
		return fmt.Errorf("backward law: input gradient: %w", err)
	}
	lhs, lmag := dot(fy, g)
	rhs, rmag := dot(x, bg)
	if math.IsNaN(lhs) || math.IsNaN(rhs) || math.Abs(lhs-rhs) > adjointTol*(lmag+rmag) {
		return fmt.Errorf("adjoint law: ⟨F x, g⟩ = %.6g but ⟨x, B g⟩ = %.6g (ratio %.4g): the backward is not the forward's adjoint", lhs, rhs, rhs/lhs)
	}
	if !tensor.BitEqual(bg, g) {
		return fmt.Errorf("backward law: the %s input gradient does not stand for the %s output gradient (%s)", r.GradIn, r.GradOut, mismatch(bg, g))
	}
	return nil
}

// dot is ⟨a, b⟩ and Σ|aᵢbᵢ|; different shapes give NaN.
func dot(a, b *tensor.Dense) (float64, float64) {
	if !tensor.SameShape(a.Shape, b.Shape) {
		return math.NaN(), 0
	}
	var s, mag float64
	for i, v := range a.Data {
		s += v * b.Data[i]
		mag += math.Abs(v * b.Data[i])
	}
	return s, mag
}

func mismatch(got, want *tensor.Dense) string {
	if !tensor.SameShape(got.Shape, want.Shape) {
		return fmt.Sprintf("shape %v, want %v", got.Shape, want.Shape)
	}
	n, first := 0, -1
	for i := range got.Data {
		if math.Float64bits(got.Data[i]) != math.Float64bits(want.Data[i]) {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	return fmt.Sprintf("%d of %d elements differ, first at flat index %d: %.6g, want %.6g", n, len(got.Data), first, got.Data[first], want.Data[first])
}

// checkGatherScatter: all-gather of a reduce-scatter is the all-reduce, bit for bit, on every
// rank (both sum in group-rank order).
func checkGatherScatter(n int, shape []int, seed uint64) error {
	const d = 1
	in := withDim(shape, d, shape[d]*n)
	m := newMini(n, 1)
	x := m.input(0, partial().Random(seed, "x", n, in))
	m.trace(m.allGather(m.reduceScatter(x, d), d), "ag_rs")
	m.trace(m.allReduce(x, ir.ReduceSum), "ar")
	got, err := m.run()
	if err != nil {
		return err
	}
	for t := range n {
		if !tensor.BitEqual(got["ag_rs"][t], got["ar"][t]) {
			return fmt.Errorf("rank %d: all_gather(reduce_scatter(x)) ≠ all_reduce(x) (%s)", t, mismatch(got["ag_rs"][t], got["ar"][t]))
		}
	}
	return nil
}

// AlgebraGen draws algebra cases: any law, groups of 1 to 4 ranks (2 often), local shapes of
// up to 3×3×3.
func AlgebraGen() gopter.Gen {
	laws := len(Laws())
	return func(gp *gopter.GenParameters) *gopter.GenResult {
		r := gp.Rng
		c := AlgebraCase{Law: r.Intn(laws), N: []int{1, 2, 2, 3, 4}[r.Intn(5)],
			Shape: []int{1 + r.Intn(3), 1 + r.Intn(3), 1 + r.Intn(3)}, Seed: uint64(1 + r.Int63n(1<<31))}
		return gopter.NewGenResult(c, func(v any) gopter.Shrink { return shrinkAlgebra(v.(AlgebraCase)) })
	}
}

// shrinkAlgebra moves a case toward two ranks, unit dims and seed 1.
func shrinkAlgebra(c AlgebraCase) gopter.Shrink {
	var cands []AlgebraCase
	if c.N > 2 {
		cands = append(cands, AlgebraCase{c.Law, 2, c.Shape, c.Seed})
	}
	for d, s := range c.Shape {
		if s > 1 {
			cands = append(cands, AlgebraCase{c.Law, c.N, withDim(c.Shape, d, 1), c.Seed})
		}
	}
	if c.Seed != 1 {
		cands = append(cands, AlgebraCase{c.Law, c.N, c.Shape, 1})
	}
	return shrinkList(cands)
}

// CheckAlgebra checks one case; the error names the law.
func CheckAlgebra(c AlgebraCase) error {
	if err := Laws()[c.Law].Check(c); err != nil {
		return fmt.Errorf("%s: %w", c, err)
	}
	return nil
}

// regionFor names the region whose ops the planner emits under role with op kind op ("" if
// none): the coverage check of the table against compiled programs.
func regionFor(role, op string) string {
	for _, r := range Regions {
		for _, part := range strings.Split(role, "+") {
			if (slices.Contains(r.FwdRoles, part) && slices.Contains(r.FwdOps, op)) || (slices.Contains(r.BwdRoles, part) && slices.Contains(r.BwdOps, op)) {
				return r.Name
			}
		}
	}
	return ""
}
