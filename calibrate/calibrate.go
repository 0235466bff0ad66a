package calibrate

import (
	"fmt"
	"maps"
	"slices"

	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/verify"
)

// Safety multiplies the largest deviation seen among the recomputations: the candidate's own
// order is one more draw from the same distribution, and the maximum of a handful of draws
// understates the tail.
const Safety = 10

// Floor is the smallest calibrated tolerance: 4 units in the last place of float64 (2⁻⁵¹), so
// that a tensor every recomputation reproduced bit for bit still allows a candidate that sums
// in yet another order.
const Floor = 0x1p-51

// MaxPlans bounds how many recomputations are run.
const MaxPlans = 6

// Result is a calibration: the plans recomputed and each tensor's tolerance.
type Result struct {
	Plans    []string           // the recomputations, as plan strings
	Observed map[string]float64 // per logical name: the largest relative deviation seen
	RTol     map[string]float64 // per logical name: max(Safety·Observed, Floor) (float64 plans)
	// Noise is, for a low-precision plan, each tensor's largest noise over the single-device
	// run and the recomputations (Observed holds its Elem).
	Noise verify.NoiseScales
}

// Alternatives lists up to MaxPlans valid plans that compute p's model in other reduction
// orders, in a fixed order: TP degrees that divide the heads and the FFN, each with and without
// sequence parallelism, and a two-stage pipeline.
func Alternatives(p plan.Plan) []plan.Plan {
	base := p
	base.Parallel = plan.Default().Parallel
	base.Bug = ""
	var out []plan.Plan
	add := func(edit func(q *plan.Plan)) {
		q := base
		q.Packed = slices.Clone(p.Packed)
		edit(&q)
		if q.Validate() == nil && len(out) < MaxPlans {
			out = append(out, q)
		}
	}
	for _, tp := range []int{2, 4, 3} {
		add(func(q *plan.Plan) { q.TP = tp })
		add(func(q *plan.Plan) { q.TP, q.SP = tp, plan.SPMegatron })
		add(func(q *plan.Plan) { q.TP, q.SP = tp, plan.SPVLLM })
	}
	add(func(q *plan.Plan) { q.PP = 2 })
	return out
}

// Calibrate recomputes p's model under Alternatives(p) and derives per-tensor tolerances. For a
// low-precision plan the recomputations execute in its dtype and, with the single-device run,
// give each tensor's noise (Result.Noise, for verify.Options.Noise) instead of float64 rtols.
func Calibrate(p plan.Plan) (*Result, error) {
	alts := Alternatives(p)
	if len(alts) == 0 {
		return nil, fmt.Errorf("calibrate: no other valid split of plan %q (heads %d, ffn %d, layers %d): nothing to recompute", p.String(), p.Heads, p.FFN, p.Layers)
	}
	if p.DType != tensor.F64 {
		return calibrateNoise(p, alts)
	}
	res := &Result{Observed: map[string]float64{}}
	// Compare at rtol 1: a result's TolUnits is then max |cand − ref| / (|ref| + floor), the
	// relative deviation in the very metric verify applies.
	unit := verify.Tolerances{tensor.F64: 1, tensor.F32: 1, tensor.BF16: 1, tensor.F16: 1}
	for _, q := range alts {
		rep, err := pipeline.Verify(q, nil, verify.Options{Tol: unit, SkipHashes: true})
		if err != nil {
			return nil, fmt.Errorf("calibrate: recomputing under %q: %w", q.String(), err)
		}
		res.Plans = append(res.Plans, q.String())
		for _, r := range rep.Results {
			if r.Verdict != verify.Identical && r.Verdict != verify.Close {
				return nil, fmt.Errorf("calibrate: the recomputation under %q disagrees with the oracle on %s (%v): the simulator, not the noise, is off", q.String(), r.Name, r.Verdict)
			}
			res.Observed[r.Name] = max(res.Observed[r.Name], r.TolUnits)
		}
	}
	res.RTol = make(map[string]float64, len(res.Observed))
	for name, o := range res.Observed {
		res.RTol[name] = max(Safety*o, Floor)
	}
	return res, nil
}

// calibrateNoise measures the noise of p's single-device low-precision run and of its
// recomputations under alts (in p's dtype) against the float64 oracle, per tensor the largest.
func calibrateNoise(p plan.Plan, alts []plan.Plan) (*Result, error) {
	ref, err := pipeline.Reference(p)
	if err != nil {
		return nil, err
	}
	res := &Result{Observed: map[string]float64{}}
	if res.Noise, err = pipeline.Noise(p, ref); err != nil {
		return nil, err
	}
	for _, q := range alts {
		o, err := pipeline.Execute(q, nil, pipeline.Simulator{})
		if err == nil && o.RunErr != nil {
			err = o.RunErr
		}
		if err != nil {
			return nil, fmt.Errorf("calibrate: recomputing under %q: %w", q.String(), err)
		}
		n, err := verify.MeasureNoise(ref, o.Cand, verify.Options{})
		o.Close()
		if err != nil {
			return nil, fmt.Errorf("calibrate: recomputing under %q: %w", q.String(), err)
		}
		res.Plans = append(res.Plans, q.String())
		res.Noise = res.Noise.Merge(n)
	}
	for name, n := range res.Noise {
		res.Observed[name] = n.Elem
	}
	return res, nil
}

// Worst is the largest observed deviation and the tensor it was seen on.
func (r *Result) Worst() (string, float64) {
	name, worst := "", 0.0
	for _, n := range slices.Sorted(maps.Keys(r.Observed)) {
		if r.Observed[n] > worst {
			name, worst = n, r.Observed[n]
		}
	}
	return name, worst
}
