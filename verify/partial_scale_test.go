package verify_test

import (
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
	vt "github.com/spcheck/spcheck/verify/verifytest"
)

// TestPartialSumToleranceScalesWithSummands: three bf16 summands that cancel (100.3, −100.1,
// 0.05) each carry rounding of ~0.4, far more than bf16's tolerance on their small sum; judged
// against the summands' magnitude the sum is close, while the same summands scaled ×2 still
// diverge.
func TestPartialSumToleranceScalesWithSummands(t *testing.T) {
	summands := [][]float64{{100.3, 7}, {-100.1, 1}, {0.05, 2}}
	exact := []float64{100.3 - 100.1 + 0.05, 10}
	build := func(scale float64) *trace.Trace {
		r := vt.TP("cand", 3, noProv)
		for q, s := range summands {
			r.Add(q, "x", vt.Meta("act/x", trace.Activation, 1, "tp=partial"), tensor.BF16, []int{2}, s[0]*scale, s[1]*scale)
		}
		tr, err := r.Trace()
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	ref := vt.Single("ref", noProv).Add(0, "x", vt.Meta("act/x", trace.Activation, 1, ""), tensor.BF16, []int{2}, exact...)
	refTr, err := ref.Trace()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		reason string
		scale  float64
		want   verify.Verdict
	}{
		{"rounded summands that cancel", 1, verify.Close},
		{"summands ×2", 2, verify.Diverged},
	}
	for _, c := range scenario.Cases(t, cases) {
		rep, err := verify.Compare(refTr, build(c.scale), verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Results[0].Verdict; got != c.want {
			t.Errorf("%s: %v, want %v (%+v)", c.reason, got, c.want, rep.Results[0].Metrics)
		}
	}
}
