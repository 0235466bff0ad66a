package nn

import (
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/nn/nntest"
	"github.com/spcheck/spcheck/tensor"
)

// randT is a deterministic std·N(0,1) tensor named for the test.
func randT(name string, std float64, shape ...int) *tensor.Dense {
	return tensor.NewRNG(7, name).NormalTensor(std, shape...)
}

// normWeight is a norm weight 1+0.1·N(0,1), like the oracle's, so its gradient is nontrivial.
func normWeight(name string, h int) *tensor.Dense {
	w := randT(name, 0.1, h)
	for i := range w.Data {
		w.Data[i]++
	}
	return w
}

func dot(a, b *tensor.Dense) float64 {
	s := 0.0
	for i := range a.Data {
		s += a.Data[i] * b.Data[i]
	}
	return s
}

// wrt is one differentiable input of a kernel check: the tensor (perturbed in place by the
// finite differences) and the gradient the backward computed for it.
type wrt struct {
	name string
	x    *tensor.Dense
	grad *tensor.Dense
}

// checkGrads compares every element of every input's analytic gradient with central
// differences of f.
func checkGrads(t *testing.T, reason string, f func() float64, inputs ...wrt) {
	t.Helper()
	for _, in := range inputs {
		if !tensor.SameShape(in.x.Shape, in.grad.Shape) {
			t.Fatalf("%s: grad of %s has shape %v, input %v", reason, in.name, in.grad.Shape, in.x.Shape)
		}
		num := nntest.NumericGrad(f, in.x.Data, nil)
		w := nntest.Worst(in.grad.Data, num)
		t.Logf("%s: d/d%s worst relative error %.2g", reason, in.name, w.RelErr)
		if w.RelErr > nntest.FDRelTol {
			t.Errorf("%s: d/d%s %v (tolerance %g)", reason, in.name, w, nntest.FDRelTol)
		}
	}
}

func TestLinearGrad(t *testing.T) {
	x, w := randT("x", 1, 2, 3, 4), randT("w", 0.5, 5, 4)
	r := randT("r", 1, 2, 3, 5)
	dx, dw := LinearBackward(x, w, r)
	checkGrads(t, "linear y=x·Wᵀ over [2,3,4]×[5,4]", func() float64 { return dot(r, Linear(x, w)) },
		wrt{"x", x, dx}, wrt{"W", w, dw})
}

func TestRMSNormGrad(t *testing.T) {
	x, w := randT("x", 1, 2, 3, 6), normWeight("w", 6)
	r := randT("r", 1, 2, 3, 6)
	_, rstd := RMSNorm(x, w)
	dx, dw := RMSNormBackward(x, w, rstd, r)
	checkGrads(t, "rmsnorm over rows of 6", func() float64 { y, _ := RMSNorm(x, w); return dot(r, y) },
		wrt{"x", x, dx}, wrt{"w", w, dw})
}

func TestRoPEGrad(t *testing.T) {
	x := randT("x", 1, 2, 3, 2, 6)
	pos := []int{0, 1, 2, 0, 7, 1000} // restarts and a large position
	r := randT("r", 1, 2, 3, 2, 6)
	checkGrads(t, "rope rotate-half over [2,3,2,6]", func() float64 { return dot(r, RoPE(x, pos)) },
		wrt{"x", x, RoPEBackward(r, pos)})
}

func TestAttentionGrad(t *testing.T) {
	for _, tc := range scenario.Cases(t, []struct {
		reason string
		cu     []int
	}{
		{"one causal sequence per row", []int{0, 7}},
		{"three packed sequences 3:1:3 (a length-1 sequence attends only to itself)", []int{0, 3, 4, 7}},
	}) {
		q, k, v := randT("q", 1, 2, 7, 2, 4), randT("k", 1, 2, 7, 2, 4), randT("v", 1, 2, 7, 2, 4)
		r := randT("r", 1, 2, 7, 2, 4)
		_, p := Attention(q, k, v, tc.cu)
		dq, dk, dv := AttentionBackward(q, k, v, p, r, tc.cu)
		f := func() float64 { o, _ := Attention(q, k, v, tc.cu); return dot(r, o) }
		checkGrads(t, tc.reason, f, wrt{"q", q, dq}, wrt{"k", k, dk}, wrt{"v", v, dv})
	}
}

func TestSwiGLUGrad(t *testing.T) {
	gate, up := randT("gate", 3, 3, 5), randT("up", 1, 3, 5)
	r := randT("r", 1, 3, 5)
	dg, du := SwiGLUBackward(gate, up, r)
	checkGrads(t, "swiglu with gates spread over ±9", func() float64 { return dot(r, SwiGLU(gate, up)) },
		wrt{"gate", gate, dg}, wrt{"up", up, du})
}

func TestEmbeddingGrad(t *testing.T) {
	w := randT("w", 1, 5, 3)
	ids := []int{1, 3, 1, 4, 0, 1} // repeats must accumulate, row 2 gets nothing
	r := randT("r", 1, 6, 3)
	checkGrads(t, "embedding scatter-add with repeated ids", func() float64 { return dot(r, Embedding(ids, w)) },
		wrt{"W", w, EmbeddingBackward(ids, r, 5)})
}

func TestCrossEntropyGrad(t *testing.T) {
	logits := randT("z", 2, 6, 5)
	labels := []int{0, IgnoreIndex, 4, 2, 2, 3}
	mask := []float64{1, 1, 1, 0, 1, 1} // token 1 ignored by label, token 3 by mask
	const dloss = 1.7
	ce := CrossEntropy(logits, labels, mask)
	if ce.Denom != 4 {
		t.Fatalf("denominator %g, want 4 valid tokens", ce.Denom)
	}
	dz := CrossEntropyBackward(logits, labels, ce.Weights, ce.Denom, dloss)
	checkGrads(t, "cross-entropy with an ignored label and a masked token",
		func() float64 { return dloss * CrossEntropy(logits, labels, mask).Loss }, wrt{"logits", logits, dz})
}

// TestCheckerCatchesWrongBackward keeps the checker honest: a gradient off by 1% in one
// element, or with one term dropped, must fail the tolerance.
func TestCheckerCatchesWrongBackward(t *testing.T) {
	x, w := randT("x", 1, 2, 6), normWeight("w", 6)
	r := randT("r", 1, 2, 6)
	_, rstd := RMSNorm(x, w)
	dx, _ := RMSNormBackward(x, w, rstd, r)
	f := func() float64 { y, _ := RMSNorm(x, w); return dot(r, y) }
	num := nntest.NumericGrad(f, x.Data, nil)
	if w := nntest.Worst(dx.Data, num); w.RelErr > nntest.FDRelTol {
		t.Fatalf("correct gradient rejected: %v", w)
	}
	off := dx.Clone()
	off.Data[3] *= 1.01
	if w := nntest.Worst(off.Data, num); w.RelErr <= nntest.FDRelTol {
		t.Errorf("one element 1%% off accepted: %v", w)
	}
	// dropping the mean term of RMSNorm's backward (dx = r·dy·w only)
	naive := tensor.New(x.Shape...)
	for i := range naive.Data {
		naive.Data[i] = rstd[i/6] * r.Data[i] * w.Data[i%6]
	}
	if w := nntest.Worst(naive.Data, num); w.RelErr <= nntest.FDRelTol {
		t.Errorf("backward without the normalisation term accepted: %v", w)
	}
}
