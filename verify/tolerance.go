package verify

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/spcheck/spcheck/tensor"
)

// An element passes when |cand − ref| ≤ rtol·(|ref| + rms(ref)), rms over the whole reference
// tensor: relative where values are large, and an absolute floor scaled to the tensor's own
// magnitude where they cancel to near zero (gradients are often ~1e-6, so a fixed absolute
// floor such as torch's 1e-5 would pass anything).
const (
	// RTolF64 is the project's acceptance criterion for float64 executions of one model
	// (issue 4: the simulator matches the oracle to rel ≤ 1e-10). It is ~10⁶ units of roundoff
	// (u = 2⁻⁵³ ≈ 1.1e-16), room for reduction-order differences through a whole forward and
	// backward, while the bugs spcheck exists for are O(1): whole rows or chunks
	// swapped, ×tp scales, logsumexp terms.
	RTolF64 = 1e-10
	// RTolF32 is torch.testing.assert_close's float32 rtol (torch/testing/_comparison.py,
	// _DTYPE_PRECISIONS), about 10·u for u = 2⁻²⁴.
	RTolF32 = 1.3e-6
	// RTolF16 is torch.testing.assert_close's float16 rtol, about 2·u for u = 2⁻¹¹.
	RTolF16 = 1e-3
	// RTolBF16 is torch.testing.assert_close's bfloat16 rtol, about 4·u for u = 2⁻⁸.
	RTolBF16 = 1.6e-2
	// AccumRTol is the per-√term growth of the fallback rtol of an fp32/bf16/fp16 tensor whose
	// reduction length n is known: GEMMs and reductions accumulate in fp32 (cuBLAS
	// CUBLAS_COMPUTE_32F, the kernels' fp32 accumulators), whose probabilistic error bound grows
	// as √n·u₃₂ (Higham & Mary, as above); RTolF32 (≈10·u₃₂) per √n. For fp32 storage it
	// dominates past a few hundred terms; for bf16/fp16 the storage rounding dominates.
	AccumRTol = RTolF32
	// RTolInt: integer tensors (token ids, counts) must match exactly.
	RTolInt = 0
)

// DefaultRTol is the relative tolerance for values stored in d.
func DefaultRTol(d tensor.DType) float64 {
	switch d {
	case tensor.F64:
		return RTolF64
	case tensor.F32:
		return RTolF32
	case tensor.F16:
		return RTolF16
	case tensor.BF16:
		return RTolBF16
	}
	return RTolInt
}

// Tolerances overrides the relative tolerance of some dtypes; dtypes not listed keep
// DefaultRTol scaled by the reduction depth.
type Tolerances map[tensor.DType]float64

// ParseTolerances reads a --tol value: one number for every floating-point dtype ("1e-6"), or
// dtype=number pairs ("bf16=2e-2,fp32=1e-5"). "calibrate" is not a tolerance but a procedure
// (package calibrate recomputes the oracle; the CLI handles it before calling this).
func ParseTolerances(s string) (Tolerances, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	if s == "calibrate" {
		return nil, fmt.Errorf("--tol calibrate needs the oracle to recompute the reference (spcheck compare handles it); here give a number (e.g. 1e-6) or dtype=number pairs")
	}
	t := Tolerances{}
	if !strings.Contains(s, "=") {
		v, err := parseRTol(s)
		if err != nil {
			return nil, err
		}
		for _, d := range []tensor.DType{tensor.F64, tensor.F32, tensor.BF16, tensor.F16} {
			t[d] = v
		}
		return t, nil
	}
	for _, item := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("--tol item %q is not dtype=number", item)
		}
		d, err := tensor.ParseDType(strings.TrimSpace(name))
		if err != nil {
			return nil, fmt.Errorf("--tol: %v", err)
		}
		v, err := parseRTol(val)
		if err != nil {
			return nil, err
		}
		t[d] = v
	}
	return t, nil
}

func parseRTol(s string) (float64, error) {
	v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("--tol %q is not a finite, non-negative number", s)
	}
	return v, nil
}

// String prints t in the form ParseTolerances reads, dtypes in a fixed order.
func (t Tolerances) String() string {
	var parts []string
	for _, d := range []tensor.DType{tensor.F64, tensor.F32, tensor.BF16, tensor.F16, tensor.I64, tensor.I32} {
		if v, ok := t[d]; ok {
			parts = append(parts, fmt.Sprintf("%s=%g", d, v))
		}
	}
	return strings.Join(parts, ",")
}

// tolFor is the per-element rtol and the normwise bound used to compare a tensor stored as ref
// and cand. A per-tensor rule (Options.TolRules) comes first; then an explicit dtype override
// (--tol) is used as given. A low-precision tensor with a noise
// reference (Options.Noise) gets noiseTol. Otherwise the fallback is the looser of the two
// dtypes' rtols (a bf16 candidate is judged at bf16 precision against an fp64 oracle), float64
// ones calibrated where Options.Calibrated says, scaled by √depth for a known reduction depth > 1:
// the probabilistic bound on the error of a sum of n terms grows as √n·u (Higham & Mary, SIAM J.
// Sci. Comput. 41(5), 2019); an fp32, bf16 or fp16 tensor whose producer gives the reduction
// length n of the op that made it (trace.TensorMeta.Reduce) adds AccumRTol·√n for the fp32
// accumulation inside that op. Its normwise bound is NormOfRTol of the rtol.
func (o *Options) tolFor(name string, ref, cand tensor.DType, reduce int) (rtol, norm float64) {
	if i := o.ruleFor(name); i >= 0 {
		return o.TolRules[i].RTol, NormOfRTol * o.TolRules[i].RTol
	}
	d := ref
	if DefaultRTol(cand) > DefaultRTol(ref) {
		d = cand
	}
	_, overRef := o.Tol[ref]
	_, overCand := o.Tol[cand]
	if n, ok := o.Noise[name]; ok && !overRef && !overCand && d.IsFloat() && d != tensor.F64 {
		return noiseTol(n, d)
	}
	one := func(d tensor.DType) float64 {
		if v, ok := o.Tol[d]; ok {
			return v
		}
		if v, ok := o.Calibrated[name]; ok && d == tensor.F64 {
			return v
		}
		r := DefaultRTol(d)
		if o.Depth != nil {
			if n := o.Depth(name); n > 1 {
				r *= math.Sqrt(float64(n))
			}
		}
		if reduce > 1 && d != tensor.F64 && d.IsFloat() {
			r += AccumRTol * math.Sqrt(float64(reduce))
		}
		return r
	}
	rtol = max(one(ref), one(cand))
	return rtol, NormOfRTol * rtol
}
