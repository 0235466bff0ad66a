package pipeline

import (
	"fmt"
	"slices"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// SingleDevice is p's model on one device: no parallelism, one micro-batch, no bug.
func SingleDevice(p plan.Plan) plan.Plan {
	q := p
	q.Packed = slices.Clone(p.Packed)
	q.Parallel = plan.Default().Parallel
	q.Bug = ""
	return q
}

// Reordered is a second correct split of p's model in p's dtype that sums in another order than
// the single device: tp=2 where the heads and the FFN divide, else two pipeline stages, else
// none (ok false).
func Reordered(p plan.Plan) (plan.Plan, bool) {
	q := SingleDevice(p)
	q.TP = 2
	if q.Validate() == nil {
		return q, true
	}
	q.TP, q.PP = 1, 2
	return q, q.Validate() == nil
}

// NoiseRun is the correct single-device run of p's model in p's dtype (SingleDevice(p) on the
// simulator, which rounds where the GPU does): the noise reference of a low-precision plan.
func NoiseRun(p plan.Plan) (*trace.Trace, error) { return correctRun(SingleDevice(p)) }

// correctRun runs q (a correct plan) on the simulator.
func correctRun(q plan.Plan) (*trace.Trace, error) {
	o, err := Execute(q, nil, Simulator{})
	if err == nil && o.RunErr != nil {
		err = o.RunErr
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: the correct %s run %q: %w", q.DType, q.String(), err)
	}
	return o.Cand, nil
}

// Noise is the noise scale of every tensor of a low-precision plan: how far NoiseRun(p) and the
// Reordered(p) run lie from ref, p's float64 oracle trace (Reference), the larger per tensor:
// the single device rounds least, a split adds the rounding of partial sums that a parallel
// candidate has too (rows that are exactly zero on one device are noise under a split). It is nil for a float64 plan, whose tolerance
// is a constant or calibrated (package calibrate).
func Noise(p plan.Plan, ref *trace.Trace) (verify.NoiseScales, error) {
	opt, err := WithNoise(p, ref, verify.Options{})
	return opt.Noise, err
}

// WithNoise returns opt with the noise of p's single-device low-precision run against ref (p's
// oracle trace), and the run itself (Options.NoiseRun, for the per-rank bias), when p is a
// low-precision plan and opt has neither noise scales nor tolerance overrides: the default
// tolerance of every comparison with an oracle reference.
func WithNoise(p plan.Plan, ref *trace.Trace, opt verify.Options) (verify.Options, error) {
	if opt.Noise != nil || len(opt.Tol) > 0 || p.DType == tensor.F64 || !p.DType.IsFloat() {
		return opt, nil
	}
	run, err := NoiseRun(p)
	if err != nil {
		return opt, err
	}
	if opt.Noise, err = verify.MeasureNoise(ref, run, verify.Options{Rename: opt.Rename}); err != nil {
		return opt, err
	}
	opt.NoiseRun = run
	if q, ok := Reordered(p); ok {
		again, err := correctRun(q)
		if err != nil {
			return opt, err
		}
		n, err := verify.MeasureNoise(ref, again, verify.Options{Rename: opt.Rename})
		if err != nil {
			return opt, err
		}
		opt.Noise = opt.Noise.Merge(n)
	}
	return opt, nil
}
