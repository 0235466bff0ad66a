package verify_test

import (
	"math"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
	vt "github.com/spcheck/spcheck/verify/verifytest"
)

// TestMetricsAtTheToleranceBoundary: an element passes iff |cand − ref| ≤ rtol·(|ref| + rms(ref));
// NaN and ±Inf fail on either side, on both sides too (a NaN in the reference is no less a
// bug); the numbers reported are the documented ones.
func TestMetricsAtTheToleranceBoundary(t *testing.T) {
	inf, nan := math.Inf(1), math.NaN()
	ref := []float64{1, 0, -3, 2, 1}
	nonFinite := []float64{1, 0, -3, nan, inf}
	rms := math.Sqrt(15.0 / 5)
	tol0 := verify.RTolF64 * (1 + rms)
	tol1 := verify.RTolF64 * rms
	with := func(base []float64, i int, v float64) []float64 {
		c := append([]float64{}, base...)
		c[i] = v
		return c
	}
	cases := []struct {
		ref, cand []float64
		verdict   verify.Verdict
		outside   int
		region    string
		reason    string
	}{
		{ref, with(ref, 0, 1), verify.Identical, 0, "", "bitwise equal"},
		{ref, with(ref, 0, 1+0.9*tol0), verify.Close, 0, "", "just inside the relative tolerance"},
		{ref, with(ref, 0, 1+1.1*tol0), verify.Diverged, 1, "[0:1]", "just outside it"},
		{ref, with(ref, 1, 0.9*tol1), verify.Close, 0, "", "a zero reference: the rms floor allows a little"},
		{ref, with(ref, 1, 1.1*tol1), verify.Diverged, 1, "[1:2]", "a zero reference: just outside the floor"},
		{nonFinite, nonFinite, verify.NonFinite, 2, "[3:5]", "NaN and Inf in the same places, bitwise equal: both sides fail"},
		{nonFinite, with(nonFinite, 4, -inf), verify.NonFinite, 2, "[3:5]", "the other infinity"},
		{nonFinite, with(nonFinite, 3, 5), verify.NonFinite, 2, "[3:5]", "a finite value where the reference is NaN"},
		{ref, with(ref, 2, nan), verify.NonFinite, 1, "[2:3]", "NaN where the reference is finite"},
	}
	mk := func(name string, v []float64) *trace.Trace {
		tr, err := vt.Single(name, vt.Provenance{}).Add(0, "x", vt.Meta("x", trace.Activation, 1, ""), tensor.F64, []int{5}, v...).Trace()
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	for _, c := range scenario.Cases(t, cases) {
		rep, err := verify.Compare(mk("ref", c.ref), mk("cand", c.cand), verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		r := rep.Results[0]
		if r.Verdict != c.verdict || r.Outside != c.outside || r.Region() != c.region {
			t.Errorf("%s: %s, %d outside, region %q; want %s, %d, %q", c.reason, r.Verdict, r.Outside, r.Region(), c.verdict, c.outside, c.region)
		}
	}
	rep, err := verify.Compare(mk("ref", ref), mk("cand", with(ref, 0, 1.5)), verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	r := rep.Results[0]
	near := func(a, b float64) bool { return math.Abs(a-b) <= 1e-12*math.Abs(b) }
	if !near(r.MaxAbs, 0.5) || !near(r.MaxRel, 0.5) || !near(r.RMSRel, 0.5/math.Sqrt(15)) || !near(r.TolUnits, 0.5/tol0) || r.Worst != 0 {
		t.Errorf("metrics %+v: want max abs 0.5, max rel 0.5, rms rel 0.5/√15, %g tolerances at index 0", r.Metrics, 0.5/tol0)
	}
}
