package fuzz

import (
	"math/rand"

	"github.com/leanovate/gopter"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
)

// Space bounds the plans the generator draws.
type Space struct {
	MaxTP, MaxPP, MaxDP int
	MaxMTP              int
	MaxSeq              int
	SPStyles            []plan.SPStyle
	Microbatches        []int
}

// TinySpace is the default: tiny dims so a plan simulates in about a millisecond.
func TinySpace() Space {
	return Space{MaxTP: 4, MaxPP: 4, MaxDP: 2, MaxMTP: 2, MaxSeq: 12,
		SPStyles:     []plan.SPStyle{plan.SPOff, plan.SPMegatron, plan.SPVLLM},
		Microbatches: []int{1, 2, 4}}
}

// PlanGen draws valid plans from s.
func PlanGen(s Space) gopter.Gen {
	return func(gp *gopter.GenParameters) *gopter.GenResult {
		return gopter.NewGenResult(Draw(gp.Rng, s), func(v any) gopter.Shrink { return ShrinkPlan(v.(plan.Plan)) })
	}
}

// Draw returns one valid plan. Every size is built from the mesh up (heads and ffn as multiples
// of tp, layers ≥ pp, batch a multiple of dp × microbatches), so no draw is rejected.
func Draw(r *rand.Rand, s Space) plan.Plan {
	p := plan.Default()
	p.TP, p.PP, p.DP = 1+r.Intn(s.MaxTP), 1+r.Intn(s.MaxPP), 1+r.Intn(s.MaxDP)
	p.SP = s.SPStyles[r.Intn(len(s.SPStyles))]
	p.PartialP2P = r.Intn(2) == 0
	p.Microbatches = s.Microbatches[r.Intn(len(s.Microbatches))]
	p.Schedule = []plan.Schedule{plan.GPipe, plan.OneFOneB}[r.Intn(2)]
	p.MTP = r.Intn(s.MaxMTP + 1)
	p.Heads = p.TP * (1 + r.Intn(2))
	p.Hidden = p.Heads * 2 * (1 + r.Intn(2))
	p.FFN = p.TP * (1 + r.Intn(4))
	p.Layers = p.PP + r.Intn(p.PP+1) // often exactly one layer per stage
	p.Vocab = 2 + r.Intn(30)         // usually not a multiple of tp
	p.Batch = p.DP * p.Microbatches * (1 + r.Intn(2))
	p.Seq = drawSeq(r, p.TP, s.MaxSeq)
	p.Packed = drawPacked(r, p.Seq)
	p.Tied = r.Intn(4) == 0
	p.DType = tensor.F64
	p.Seed = uint64(r.Int63n(1 << 31))
	return p
}

// drawSeq favours the edges: one token per shard, a multiple of tp, or not a multiple.
func drawSeq(r *rand.Rand, tp, maxSeq int) int {
	switch r.Intn(3) {
	case 0:
		return tp
	case 1:
		return min(maxSeq, tp*(1+r.Intn(3)))
	}
	return 1 + r.Intn(maxSeq)
}

// drawPacked splits seq into packed sequences half of the time, length-1 sequences included.
func drawPacked(r *rand.Rand, seq int) []int {
	if seq < 2 || r.Intn(2) == 0 {
		return nil
	}
	var lens []int
	for left := seq; left > 0; {
		l := 1 + r.Intn(left)
		lens = append(lens, l)
		left -= l
	}
	if len(lens) == 1 {
		return nil
	}
	return lens
}
