package simulate

import (
	"fmt"
	"slices"

	"github.com/spcheck/spcheck/oracle"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// OracleTrace runs the oracle on p's model and returns its reference trace in memory, exactly
// as oracle.WriteTrace writes it (inputs as I64, the rest in the plan's dtype).
func OracleTrace(p plan.Plan) (*trace.Trace, error) {
	res, err := oracle.Run(p.Model)
	if err != nil {
		return nil, err
	}
	w, err := oracle.TraceWriter(p, res)
	if err != nil {
		return nil, err
	}
	f, err := w.File(trace.FileName(0))
	if err != nil {
		return nil, err
	}
	return trace.New(oracle.Producer, []*trace.File{f})
}

// Verify runs the oracle and the simulator on p and compares the simulator's trace, reassembled
// by placement, with the oracle's. A low-precision plan is judged against the noise of its
// single-device run (Noise) unless opt already carries noise scales or tolerance overrides.
func Verify(p plan.Plan, opt verify.Options) (*verify.Report, error) {
	ref, err := OracleTrace(p)
	if err != nil {
		return nil, err
	}
	if opt.Noise == nil && len(opt.Tol) == 0 {
		if opt.Noise, err = Noise(p, ref); err != nil {
			return nil, err
		}
	}
	cand, err := Run(p)
	if err != nil {
		return nil, err
	}
	return verify.Compare(ref, cand, opt)
}

// SingleDevice is p's model on one device: no parallelism, one micro-batch, no bug.
func SingleDevice(p plan.Plan) plan.Plan {
	q := p
	q.Packed = slices.Clone(p.Packed)
	q.Parallel = plan.Default().Parallel
	q.Bug = ""
	return q
}

// Noise is the noise scale of every tensor of a low-precision plan: how far the correct
// single-device run in p's dtype (SingleDevice(p) on the simulator, rounding where the GPU does)
// lies from ref, p's float64 oracle trace (OracleTrace). It is nil for a float64 plan, whose
// tolerance is a constant or calibrated (package calibrate).
func Noise(p plan.Plan, ref *trace.Trace) (verify.NoiseScales, error) {
	if p.DType == tensor.F64 || !p.DType.IsFloat() {
		return nil, nil
	}
	run, err := Run(SingleDevice(p))
	if err != nil {
		return nil, fmt.Errorf("simulate: the single-device %s run of %q: %w", p.DType, p.String(), err)
	}
	return verify.MeasureNoise(ref, run, verify.Options{})
}
