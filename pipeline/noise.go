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

// Noise is the noise scale of every tensor of a low-precision plan: how far the correct
// single-device run in p's dtype (SingleDevice(p) on the simulator, which rounds where the GPU
// does) lies from ref, p's float64 oracle trace (Reference). It is nil for a float64 plan, whose
// tolerance is a constant or calibrated (package calibrate).
func Noise(p plan.Plan, ref *trace.Trace) (verify.NoiseScales, error) {
	if p.DType == tensor.F64 || !p.DType.IsFloat() {
		return nil, nil
	}
	q := SingleDevice(p)
	o, err := Execute(q, nil, Simulator{})
	if err == nil && o.RunErr != nil {
		err = o.RunErr
	}
	if err != nil {
		return nil, fmt.Errorf("pipeline: the single-device %s run of %q: %w", p.DType, p.String(), err)
	}
	defer o.Close()
	return verify.MeasureNoise(ref, o.Cand, verify.Options{})
}

// WithNoise returns opt with the noise of p's single-device low-precision run against ref (p's
// oracle trace) when p is a low-precision plan and opt has neither noise scales nor tolerance
// overrides: the default tolerance of every comparison with an oracle reference.
func WithNoise(p plan.Plan, ref *trace.Trace, opt verify.Options) (verify.Options, error) {
	if opt.Noise != nil || len(opt.Tol) > 0 {
		return opt, nil
	}
	var err error
	opt.Noise, err = Noise(p, ref)
	return opt, err
}
