package verify

import (
	"math"
	"testing"

	"github.com/spcheck/spcheck/tensor"
)

// TestHeatmapPoolsTheWorstElement: a [3, 4, 130] tensor with one element off by 10× its bound
// and one NaN is drawn as 12 rows (the leading dims flattened) × 64 columns; each bad element
// lands in the cell its position maps to, with its values, and the histogram counts it in its
// decade.
func TestHeatmapPoolsTheWorstElement(t *testing.T) {
	shape := []int{3, 4, 130}
	n := 3 * 4 * 130
	ref, cand := make([]float64, n), make([]float64, n)
	for i := range ref {
		ref[i] = float64(i%7) - 3
		cand[i] = ref[i]
	}
	const rtol, floor = 1e-3, 1.0
	bad, nan := 5*130+129, 11*130
	cand[bad] = ref[bad] + 10*rtol*(math.Abs(ref[bad])+floor)
	cand[nan] = math.NaN()
	res := &Result{RefShape: shape, RefDType: tensor.F64, CandDType: tensor.F64, RTol: rtol, Metrics: Metrics{Floor: floor}}
	h := heatmapOf(res, tensor.Encode(tensor.F64, ref), tensor.Encode(tensor.F64, cand))
	if h == nil || h.Rows != 12 || h.Cols != HeatmapMax || h.RowLen != 12 || h.ColLen != 130 {
		t.Fatalf("heatmap %+v, want 12×%d cells over 12×130", h, HeatmapMax)
	}
	cell := 5*h.Cols + 129*HeatmapMax/130
	if u := h.Units[cell]; math.Abs(u-10) > 1e-9 || h.Ref[cell] != ref[bad] || h.Cand[cell] != cand[bad] {
		t.Errorf("cell %d: %g× tol, ref %g cand %g; want 10×, %g, %g", cell, u, h.Ref[cell], h.Cand[cell], ref[bad], cand[bad])
	}
	if u := h.Units[11*h.Cols]; !math.IsInf(u, 1) {
		t.Errorf("the NaN's cell: %g× tol, want +Inf", u)
	}
	if h.Hist[1-HistLo] != 1 || h.Hist[HistHi-HistLo] != 1 || h.Exact != n-2 {
		t.Errorf("histogram %v (exact %d), want one element at 1e1 and one at ≥1e%d, %d exact", h.Hist, h.Exact, HistHi, n-2)
	}
}
