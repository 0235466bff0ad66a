package simulate

import (
	"fmt"
	"slices"

	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/tensor"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/trace"
)

// Mesh axes. Ranks are numbered dp-major, tp-minor: rank = (dp·PP + pp)·TP + tp, so the TP
// group of a stage is contiguous (Megatron's default order puts TP innermost too). mb is the
// virtual micro-batch axis: its coordinate is given per tensor.
const (
	AxisDP = "dp"
	AxisPP = "pp"
	AxisTP = "tp"
	AxisMB = "mb"
)

// Group names (ir.Group.Name).
const (
	GroupTP        = "tp"
	GroupPP        = "pp"
	GroupDP        = "dp"
	GroupEmbedding = "embedding" // the first and last stage's copies of the embedding
)

// layout is everything about a plan that does not depend on the rank: sizes, the layers of
// each stage, shard sizes and paddings.
type layout struct {
	p           plan.Plan
	tp, pp, dp  int
	mbs         int   // micro-batches per DP replica
	rows        int   // batch rows per micro-batch
	stageLayers []int // stage s holds layers [stageLayers[s], stageLayers[s+1])

	sp        plan.SPStyle // SPOff when tp = 1: sequence parallelism over one rank is no split
	seqPad    int          // sequence length padded to a multiple of tp under SP (= Seq otherwise)
	seqBlock  int          // rows of the sequence per TP rank under SP: seqPad/tp
	vocabBlk  int          // vocab rows per TP rank: ceil(V/tp); the last shards are padded
	headsLoc  int          // attention heads per TP rank
	hiddenLoc int          // q/k/v output columns per TP rank: headsLoc·hd
	ffnLoc    int          // gate/up rows per TP rank
	cu        []int        // cu_seqlens of a row
	pos       []int        // RoPE positions of a micro-batch's tokens

	paramCache map[string]*tensor.Dense // full initial parameters, generated once per Compile
	lazyParams bool                     // CompileGenerated: parameter shards are only described
}

func newLayout(p plan.Plan) *layout {
	l := &layout{p: p, tp: p.TP, pp: p.PP, dp: p.DP, mbs: p.Microbatches, sp: p.SP}
	l.rows = p.Batch / (p.DP * p.Microbatches)
	if l.tp == 1 {
		l.sp = plan.SPOff
	}
	l.stageLayers = make([]int, l.pp+1)
	for s := 0; s < l.pp; s++ { // balanced: the first Layers%pp stages hold one layer more
		n := p.Layers / l.pp
		if s < p.Layers%l.pp {
			n++
		}
		l.stageLayers[s+1] = l.stageLayers[s] + n
	}
	l.seqPad, l.seqBlock = p.Seq, p.Seq
	if l.sp != plan.SPOff {
		l.seqBlock = (p.Seq + l.tp - 1) / l.tp
		l.seqPad = l.seqBlock * l.tp
	}
	l.vocabBlk = (p.Vocab + l.tp - 1) / l.tp
	l.headsLoc = p.Heads / l.tp
	l.hiddenLoc = l.headsLoc * p.HeadDim()
	l.ffnLoc = p.FFN / l.tp
	l.cu = p.CuSeqlens()
	l.pos = nn.Positions(l.rows, l.cu)
	l.paramCache = map[string]*tensor.Dense{}
	return l
}

// coord is a rank's position in the mesh.
type coord struct{ dp, pp, tp int }

func (l *layout) rank(c coord) int { return (c.dp*l.pp+c.pp)*l.tp + c.tp }

func (l *layout) coordOf(r int) coord {
	return coord{dp: r / (l.pp * l.tp), pp: r / l.tp % l.pp, tp: r % l.tp}
}

func (l *layout) world() int { return l.dp * l.pp * l.tp }

// tpGroup is the TP communicator of the stage holding c.
func (l *layout) tpGroup(c coord) *ir.Group {
	g := &ir.Group{Name: GroupTP}
	for t := 0; t < l.tp; t++ {
		g.Ranks = append(g.Ranks, l.rank(coord{c.dp, c.pp, t}))
	}
	return g
}

// dpGroup is the DP communicator of c's (pp, tp) position.
func (l *layout) dpGroup(c coord) *ir.Group {
	g := &ir.Group{Name: GroupDP}
	for d := 0; d < l.dp; d++ {
		g.Ranks = append(g.Ranks, l.rank(coord{d, c.pp, c.tp}))
	}
	return g
}

// embeddingGroup joins the first and last stage's copies of the embedding (Megatron's
// embedding group), or is nil when one stage holds the only copy.
func (l *layout) embeddingGroup(c coord) *ir.Group {
	if !l.lastHoldsEmbedding() {
		return nil
	}
	return &ir.Group{Name: GroupEmbedding, Ranks: []int{l.rank(coord{c.dp, 0, c.tp}), l.rank(coord{c.dp, l.pp - 1, c.tp})}}
}

// lastHoldsEmbedding: a last stage other than the first needs the embedding for a tied LM
// head or for the MTP depths' token embeddings.
func (l *layout) lastHoldsEmbedding() bool { return l.pp > 1 && (l.p.Tied || l.p.MTP > 0) }

// vocabRange is the real vocab rows [lo, lo+n) of TP rank t's block (n may be < vocabBlk, or
// 0, for the last ranks).
func (l *layout) vocabRange(t int) (lo, n int) {
	lo = min(t*l.vocabBlk, l.p.Vocab)
	return lo, min(l.vocabBlk, l.p.Vocab-lo)
}

// mesh is the trace mesh: dp, pp, the virtual micro-batch axis mb, then tp (mb before tp:
// rows of a micro-batch are split before a tensor's TP shards or summands are).
func (l *layout) mesh() trace.Mesh {
	return trace.Mesh{Axes: []string{AxisDP, AxisPP, AxisMB, AxisTP}, Shape: []int{l.dp, l.pp, l.mbs, l.tp}}
}

// irMesh is the program mesh (real axes only).
func (l *layout) irMesh() ir.Mesh {
	return ir.Mesh{Axes: []string{AxisDP, AxisPP, AxisTP}, Shape: []int{l.dp, l.pp, l.tp}}
}

// batchRows is the rows [lo, lo+rows) of the global batch held by micro-batch m of replica d:
// replicas split the batch first, micro-batches split each replica's share (the placement
// dp=shard(0),mb=shard(0)).
func (l *layout) batchRows(d, m int) int { return (d*l.mbs + m) * l.rows }

func (l *layout) String() string {
	return fmt.Sprintf("dp=%d pp=%d tp=%d mb=%d stages=%v sp=%s", l.dp, l.pp, l.tp, l.mbs, l.stageLayers, l.sp)
}

// TPGroupOf is the TP communicator of a program's rank, read from the program's mesh and
// coordinates (ranks numbered row-major over the mesh axes, tp innermost, as the planner
// numbers them); a mesh without a tp axis gives the rank alone. Rewrites that add a TP
// collective use it.
func TPGroupOf(p *ir.Program) *ir.Group {
	g := &ir.Group{Name: GroupTP, Ranks: []int{p.Rank}}
	i := slices.Index(p.Mesh.Axes, AxisTP)
	if i < 0 {
		return g
	}
	stride := 1
	for _, n := range p.Mesh.Shape[i+1:] {
		stride *= n
	}
	base := p.Rank - p.Coord[AxisTP]*stride
	g.Ranks = nil
	for t := 0; t < p.Mesh.Shape[i]; t++ {
		g.Ranks = append(g.Ranks, base+t*stride)
	}
	return g
}
