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

// NoiseRun is the correct single-device run of p's model in p's dtype (SingleDevice(p) on the
// simulator, which rounds where the GPU does): the noise reference of a low-precision plan.
func NoiseRun(p plan.Plan) (*trace.Trace, error) {
	o, err := Execute(SingleDevice(p), nil, Simulator{})
	if err == nil && o.RunErr != nil {
		err = o.RunErr
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: the single-device %s run of %q: %w", p.DType, p.String(), err)
	}
	return o.Cand, nil
}

// Noise is the noise scale of every tensor of a low-precision plan: how far NoiseRun(p) lies
// from ref, p's float64 oracle trace (Reference). It is nil for a float64 plan, whose tolerance
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
	return opt, nil
}
