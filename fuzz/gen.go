package fuzz

import (
	"fmt"
	"math/rand"
	"slices"

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
	// DTypes are the plan dtypes drawn (repeat one to weight it).
	DTypes []tensor.DType
}

// TinySpace is the default: mesh degrees up to 4 (uneven splits at 3) and tiny dims, so a
// plan goes through oracle, simulator and comparison in tens of milliseconds.
func TinySpace() Space {
	return Space{MaxTP: 4, MaxPP: 4, MaxDP: 2, MaxMTP: 2, MaxSeq: 12,
		SPStyles:     []plan.SPStyle{plan.SPOff, plan.SPMegatron, plan.SPVLLM},
		Microbatches: []int{1, 2, 4}, DTypes: []tensor.DType{tensor.F64, tensor.F64, tensor.F64, tensor.F32, tensor.BF16, tensor.F16}}
}

// Validate reports a space Draw cannot draw from.
func (s Space) Validate() error {
	switch {
	case s.MaxTP < 1 || s.MaxPP < 1 || s.MaxDP < 1 || s.MaxSeq < 1 || s.MaxMTP < 0:
		return fmt.Errorf("plan space: every max must be ≥ 1 (max mtp ≥ 0): %+v", s)
	case len(s.SPStyles) == 0 || len(s.Microbatches) == 0:
		return fmt.Errorf("plan space: no SP styles or micro-batch counts to draw from: %+v", s)
	case slices.Contains(s.Microbatches, 0):
		return fmt.Errorf("plan space: micro-batch counts must be ≥ 1: %v", s.Microbatches)
	case slices.ContainsFunc(s.DTypes, func(d tensor.DType) bool { return !d.IsFloat() }):
		return fmt.Errorf("plan space: dtypes must be float: %v", s.DTypes)
	}
	return nil
}

// Mesh2Space bounds every mesh degree by 2, MTP by 1 and the sequence by 8: the fastest
// space (the "tiny plans" of the plans/s benchmark), still holding every catalogue bug's
// minimal plan.
func Mesh2Space() Space {
	s := TinySpace()
	s.MaxTP, s.MaxPP, s.MaxMTP, s.MaxSeq, s.Microbatches = 2, 2, 1, 8, []int{1, 2}
	return s
}

// Spaces are the named spaces of `spcheck fuzz --space`.
func Spaces() map[string]Space { return map[string]Space{"tiny": TinySpace(), "mesh2": Mesh2Space()} }

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
	p.TP, p.PP, p.DP = drawDegree(r, s.MaxTP), drawDegree(r, s.MaxPP), drawDegree(r, s.MaxDP)
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
	p.MTPLambda = []float64{0.3, 0.5, 1, 0}[r.Intn(4)]
	p.DType = tensor.F64
	if len(s.DTypes) > 0 {
		p.DType = s.DTypes[r.Intn(len(s.DTypes))]
	}
	p.Seed = uint64(r.Int63n(1 << 31))
	return p
}

// drawDegree draws a mesh degree in [1, most]: 2 half of the time (the bugs of the catalogue
// all show at degree 2, and a small mesh simulates fastest), 1 a quarter of the time, and
// otherwise any degree up to most (the uneven splits of 3).
func drawDegree(r *rand.Rand, most int) int {
	switch r.Intn(4) {
	case 0:
		return 1
	case 1, 2:
		return min(2, most)
	}
	return 1 + r.Intn(most)
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
