package simtest

import (
	"fmt"
	"math"

	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/verify"
)

// LowPrecisionSeed seeds LowPrecisionPlans.
const LowPrecisionSeed = 13

// LowPrecisionDTypes are the stored dtypes of the low-precision sweep, in the order its plans
// cycle through them.
var LowPrecisionDTypes = []tensor.DType{tensor.F32, tensor.BF16, tensor.F16}

// Sizes of the low-precision sweep: hidden up to MaxSweepHidden and seq up to MaxSweepSeq, with
// the work of one plan (tokens × hidden of a batch) capped at MaxSweepWork so that the large
// corners appear (hidden 256 at a short sequence, seq 512 at a narrow model) without any plan
// taking more than a second or two on one core.
const (
	MaxSweepHidden = 256
	MaxSweepSeq    = 512
	MaxSweepWork   = 1 << 16
)

// LowPrecisionPlans returns n random correct plans for the low-precision sweep: dtypes cycle
// through LowPrecisionDTypes; tp, pp and dp up to 4 with SP styles, micro-batches, schedules,
// partial P2P, MTP depths 0–2, packed sequences and tied heads drawn from a counter RNG (the
// same list on every run); hidden 8…MaxSweepHidden and seq 1…MaxSweepSeq log-uniformly,
// capped by MaxSweepWork.
func LowPrecisionPlans(n int) []plan.Plan {
	rng := tensor.NewRNG(LowPrecisionSeed, "simtest/lowprec")
	k := uint64(0)
	pick := func(m int) int { k++; return rng.Intn(k, m) }
	var out []plan.Plan
	for i := 0; len(out) < n; i++ {
		p := plan.Default()
		p.DType = LowPrecisionDTypes[len(out)%len(LowPrecisionDTypes)]
		p.Seed = uint64(1 + i)
		p.TP, p.PP, p.DP = 1+pick(4), 1+pick(4), 1+pick(4)
		p.SP = []plan.SPStyle{plan.SPOff, plan.SPMegatron, plan.SPVLLM}[pick(3)]
		p.PartialP2P = pick(2) == 1
		p.Microbatches = []int{1, 2, 4}[pick(3)]
		p.Schedule = []plan.Schedule{plan.OneFOneB, plan.GPipe}[pick(2)]
		p.MTP = pick(3)
		p.Tied = pick(2) == 1
		p.Batch = p.DP * p.Microbatches
		headDim := []int{2, 4, 8, 16}[pick(4)]
		p.Heads = p.TP * (1 + pick(2))
		p.Hidden = p.Heads * headDim
		for p.Hidden*2 <= MaxSweepHidden && pick(3) > 0 { // log-uniform-ish growth
			p.Hidden *= 2
			p.Heads *= 2
		}
		if p.Hidden > MaxSweepHidden {
			continue
		}
		p.FFN = p.TP * (1 + pick(4*p.Hidden/p.TP))
		p.Layers = p.PP + pick(2)
		p.Vocab = 2 + pick(300)
		p.Seq = 1 << pick(10) // 1…512
		p.Seq += pick(p.Seq)  // not only powers of two
		p.Seq = min(p.Seq, MaxSweepSeq)
		if work := p.Batch * p.Seq * p.Hidden; work > MaxSweepWork {
			continue
		}
		if pick(2) == 1 && p.Seq >= 3 {
			first := 1 + pick(p.Seq-2)
			p.Packed = []int{first, p.Seq - first}
		}
		if p.Validate() != nil {
			continue
		}
		out = append(out, p)
	}
	return out
}

// Excess is how far a comparison is from failing: the largest, over its tensors, of the worst
// element in units of its tolerance and the normwise deviation in units of its normwise bound
// (a correct run must stay ≤ 1 but for the isolated outliers verify allows).
func Excess(rep *verify.Report) (worst float64, name string) {
	for _, r := range rep.Results {
		x := r.TolUnits
		if r.NormTol > 0 {
			x = max(x, r.NormDev/r.NormTol)
		}
		if math.IsNaN(x) {
			x = math.Inf(1)
		}
		if x > worst {
			worst, name = x, r.Name
		}
	}
	return worst, name
}

// CheckExcess is Check returning the comparison's Excess too; a precision bias reported on a
// correct run is a failure as well.
func CheckExcess(p plan.Plan) (float64, string, error) {
	rep, err := pipeline.Verify(p, nil, verify.Options{SkipHashes: true})
	if err != nil {
		return 0, "", fmt.Errorf("%v\n  reproduce: %s", err, pipeline.VerifyCommand(p))
	}
	x, name := Excess(rep)
	if !rep.Verified() {
		return x, name, failures(p, rep)
	}
	if len(rep.Bias) > 0 {
		return x, name, fmt.Errorf("plan %s: a correct run reported a precision bias: %s\n  reproduce: %s", p, rep.Bias[0], pipeline.VerifyCommand(p))
	}
	return x, name, nil
}
