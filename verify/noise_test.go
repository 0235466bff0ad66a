package verify_test

import (
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
	vt "github.com/spcheck/spcheck/verify/verifytest"
)

// TestRobustJudgement: with a per-element bound b_i = rtol·(|ref_i| + rms), one element at 1.3 b_i
// in a million is noise and passes; the same excess over a row, a block or one rank's shard, a
// single element far past its bound, or a whole-tensor scale just inside every element's bound
// fails.
func TestRobustJudgement(t *testing.T) {
	const rows, cols = 1000, 1000
	const rtol = 1e-3
	ref := tensor.NewRNG(3, "verify/robust").NormalTensor(1, rows, cols).RoundAll(tensor.F32)
	var sum float64
	for _, v := range ref.Data {
		sum += v * v
	}
	rms := sqrt(sum / float64(len(ref.Data)))
	bound := func(i int) float64 { return rtol * (abs(ref.Data[i]) + rms) }
	perturb := func(idx []int, units float64) []float64 {
		c := append([]float64(nil), ref.Data...)
		for _, i := range idx {
			c[i] += units * bound(i)
		}
		return c
	}
	span := func(lo, n, step int) []int {
		var out []int
		for i := 0; i < n; i++ {
			out = append(out, lo+i*step)
		}
		return out
	}
	scaled := append([]float64(nil), ref.Data...)
	for i := range scaled {
		scaled[i] *= 1 + 0.9*rtol
	}
	for _, c := range scenario.Cases(t, []struct {
		reason string
		cand   []float64
		pass   bool
	}{
		{"one element at 1.3× its bound in a million", perturb([]int{123457}, 1.3), true},
		{"ten scattered elements at 1.3×", perturb(span(17, 10, 99991), 1.3), true},
		{"one element at 3× its bound", perturb([]int{123457}, 3), false},
		{"a row at 1.3×", perturb(span(500*cols, cols, 1), 1.3), false},
		{"a 10×10 block at 1.5×", perturb(func() []int {
			var out []int
			for r := 0; r < 10; r++ {
				out = append(out, span((300+r)*cols+40, 10, 1)...)
			}
			return out
		}(), 1.5), false},
		{"one rank's half (a column shard) at 1.1×", perturb(func() []int {
			var out []int
			for r := 0; r < rows; r++ {
				out = append(out, span(r*cols+cols/2, cols/2, 1)...)
			}
			return out
		}(), 1.1), false},
		{"a scale of 1 + 0.9·rtol, inside every element's bound", scaled, false},
	}) {
		mk := func(name string, v []float64) *trace.Trace {
			tr, err := vt.Single(name, vt.Provenance{}).Add(0, "x", vt.Meta("x", trace.Activation, 1, ""), tensor.F64, []int{rows, cols}, v...).Trace()
			if err != nil {
				t.Fatal(err)
			}
			return tr
		}
		rep, err := verify.Compare(mk("ref", ref.Data), mk("cand", c.cand), verify.Options{Tol: verify.Tolerances{tensor.F64: rtol}, SkipHashes: true})
		if err != nil {
			t.Fatal(err)
		}
		if r := rep.Results[0]; rep.Verified() != c.pass {
			t.Errorf("%s: verified %v (%s, %d outside, worst %.2f×, normwise %.3g of %.3g), want %v", c.reason, rep.Verified(), r.Verdict, r.Outside, r.TolUnits, r.NormDev, r.NormTol, c.pass)
		}
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

func sqrt(x float64) float64 {
	z := x
	for i := 0; i < 60; i++ {
		z = (z + x/z) / 2
	}
	return z
}

// TestReduceHintGrowsTheFallback: without a noise reference an fp32 tensor's tolerance grows
// with the reduction length its producer records (trace.TensorMeta.Reduce): a 2e-5 relative
// error, the fp32 accumulation noise of a 4096-term sum, passes with the hint and fails
// without it; a 1e-3 error fails either way.
func TestReduceHintGrowsTheFallback(t *testing.T) {
	ref := tensor.NewRNG(4, "verify/reduce").NormalTensor(1, 64, 64).RoundAll(tensor.F32)
	for _, c := range scenario.Cases(t, []struct {
		reason string
		reduce int
		rel    float64
		pass   bool
	}{
		{"no hint: the constant fp32 rtol", 0, 2e-5, false},
		{"a 4096-term reduction", 4096, 2e-5, true},
		{"a 4096-term reduction, an error of 1e-3", 4096, 1e-3, false},
	}) {
		mk := func(name string, v []float64) *trace.Trace {
			m := vt.Meta("act/x", trace.Activation, 1, "")
			m.Reduce = c.reduce
			tr, err := vt.Single(name, vt.Provenance{}).Add(0, "x", m, tensor.F32, []int{64, 64}, v...).Trace()
			if err != nil {
				t.Fatal(err)
			}
			return tr
		}
		cand := make([]float64, len(ref.Data))
		for i, v := range ref.Data {
			cand[i] = v * (1 + c.rel)
		}
		rep, err := verify.Compare(mk("ref", ref.Data), mk("cand", cand), verify.Options{SkipHashes: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verified() != c.pass {
			r := rep.Results[0]
			t.Errorf("%s: verified %v (rtol %.3g, worst %.2f×, normwise %.3g of %.3g), want %v", c.reason, rep.Verified(), r.RTol, r.TolUnits, r.NormDev, r.NormTol, c.pass)
		}
	}
}
