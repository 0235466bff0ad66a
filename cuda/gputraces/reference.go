package gputraces

import (
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
)

// ReferencePlan is the plan whose run on one GPU in float64 (spexec, cuBLAS DGEMM and fp64
// kernels) serves as the reference for p when p's model is too large for the CPU oracle: the
// same model, seed and batch on one device (pipeline.SingleDevice: no parallelism, one
// micro-batch, no bug variant), in float64. Its trace carries the oracle's logical
// tensors (the simulator's world-1 trace is the oracle's, tensor for tensor), so verify compares
// any candidate of p with it as with the oracle's; testdata/gpu/ref_* are such runs, checked
// against the Go oracle to ReferenceRelTol.
func ReferencePlan(p plan.Plan) plan.Plan {
	q := pipeline.SingleDevice(p)
	q.DType = tensor.F64
	return q
}

// ReferenceRelTol bounds the normwise relative difference ‖gpu − oracle‖/‖oracle‖ of every
// tensor of a GPU float64 reference run from the Go oracle's: both compute in float64 and differ
// only in the order of their sums (cuBLAS's blocked GEMMs, the GPU's tree reductions), errors of
// a few units of 2^-53 ≈ 1.1e-16 times the reduction depth, far under 1e-12 at the recorded sizes
// (issue 16's bound).
const ReferenceRelTol = 1e-12
