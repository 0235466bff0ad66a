package simtest

import (
	"fmt"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
)

// SweepSeed seeds the variant choices of Sweep (and, plus the variant, every swept plan's model
// seed). Seed 20250 draws a packed sequence that starts with a repeated token, making dL/dq
// exactly zero (pure rounding noise on both sides); it once tripped the verifier's tolerance
// floor and is now a case of TestEdgePlans (see verify.KindFloorFraction).
const SweepSeed = 20251

// variantsPerMesh is how many plans Sweep makes per (tp, pp, dp, sp): 4·4·2·3 meshes × 3 =
// 288 plans.
const variantsPerMesh = 3

// Sweep returns the simulator's acceptance sweep: every tp ∈ {1,2,3,4}, pp ∈ {1,2,3,4},
// dp ∈ {1,2} and SP style, each in three variants whose other keys are drawn from a counter RNG
// (so the list is the same on every run): micro-batches {1,2,4}, schedule, MTP depths
// {0,1,2}, packed or not, tied or not, partial P2P (with and without SP, where the planner's
// guard must keep it off for sequence shards), a sequence length and a vocab that tp divides or
// not. Models are tiny (head dim 4, one or two layers per stage, one row per micro-batch) so
// the sweep runs in seconds.
func Sweep() []plan.Plan {
	var out []plan.Plan
	rng := tensor.NewRNG(SweepSeed, "simtest/sweep")
	n := uint64(0)
	pick := func(k int) int { n++; return rng.Intn(n, k) }
	for _, tp := range []int{1, 2, 3, 4} {
		for _, pp := range []int{1, 2, 3, 4} {
			for _, dp := range []int{1, 2} {
				for _, sp := range []plan.SPStyle{plan.SPOff, plan.SPMegatron, plan.SPVLLM} {
					for v := 0; v < variantsPerMesh; v++ {
						out = append(out, sweepPlan(tp, pp, dp, sp, v, pick))
					}
				}
			}
		}
	}
	return out
}

func sweepPlan(tp, pp, dp int, sp plan.SPStyle, variant int, pick func(int) int) plan.Plan {
	p := plan.Default()
	p.Seed = SweepSeed + uint64(variant)
	p.TP, p.PP, p.DP, p.SP = tp, pp, dp, sp
	p.Microbatches = []int{1, 2, 4}[(variant+pick(3))%3]
	p.Schedule = []plan.Schedule{plan.OneFOneB, plan.GPipe}[pick(2)]
	p.MTP = (variant + pick(2)) % 3
	p.Tied = pick(2) == 1
	p.PartialP2P = pick(3) > 0 // mostly on: without SP it is used, with SP the guard must hold
	p.Heads = tp * (1 + pick(2))
	p.Hidden = 4 * p.Heads
	p.FFN = 2 * p.Hidden
	p.Layers = pp + pick(2)
	p.Batch = dp * p.Microbatches
	p.Seq = 2*tp + pick(2) // divisible by tp or not (both for tp ≥ 2)
	if tp == 1 {
		p.Seq = 3 + pick(4)
	}
	if pick(2) == 1 { // vocab a multiple of tp, else a prime that no tp > 1 divides
		p.Vocab = 4 * tp * 3
	} else {
		p.Vocab = []int{13, 17, 19}[pick(3)]
	}
	if pick(2) == 1 && p.Seq >= 3 { // packed: two or three sequences
		first := 1 + pick(p.Seq-2)
		p.Packed = []int{first, p.Seq - first}
		if rest := p.Seq - first; rest >= 2 && pick(2) == 1 {
			second := 1 + pick(rest-1)
			p.Packed = []int{first, second, rest - second}
		}
	}
	if err := p.Validate(); err != nil {
		panic(fmt.Sprintf("simtest: sweep made an invalid plan: %v", err))
	}
	return p
}
