package simulate

import (
	"github.com/spcheck/spcheck/oracle"
	"github.com/spcheck/spcheck/plan"
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
// by placement, with the oracle's.
func Verify(p plan.Plan, opt verify.Options) (*verify.Report, error) {
	ref, err := OracleTrace(p)
	if err != nil {
		return nil, err
	}
	cand, err := Run(p)
	if err != nil {
		return nil, err
	}
	return verify.Compare(ref, cand, opt)
}
