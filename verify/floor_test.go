package verify_test

import (
	"testing"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
	vt "github.com/spcheck/spcheck/verify/verifytest"
)

// TestKindFloor: a mathematically-zero tensor holding only rounding noise (different bits on
// each side) is close, judged against its kind's scale; a genuinely small tensor scaled ×2 is
// still diverged.
func TestKindFloor(t *testing.T) {
	build := func(noise, small float64) *trace.Trace {
		r := vt.Single("t", noProv)
		for i, name := range []string{"agrad/a", "agrad/b", "agrad/c"} {
			g := global(4, 4).Scale(0.01)
			r.Add(0, name, vt.Meta(name, trace.ActivationGrad, i, ""), tensor.F64, g.Shape, g.Data...)
		}
		r.Add(0, "zero", vt.Meta("agrad/zero", trace.ActivationGrad, 5, ""), tensor.F64, []int{3}, noise, -noise, 2*noise)
		r.Add(0, "small", vt.Meta("agrad/small", trace.ActivationGrad, 6, ""), tensor.F64, []int{2}, small, -small)
		tr, err := r.Trace()
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	cases := []struct {
		reason       string
		noise, small float64
		want         map[string]verify.Verdict
	}{
		{"noise differs, small equal", 3e-18, 1e-6, map[string]verify.Verdict{"agrad/zero": verify.Close, "agrad/small": verify.Identical}},
		{"small scaled ×2", 1e-18, 2e-6, map[string]verify.Verdict{"agrad/zero": verify.Identical, "agrad/small": verify.Diverged}},
	}
	for _, c := range cases {
		rep, err := verify.Compare(build(1e-18, 1e-6), build(c.noise, c.small), verify.Options{})
		if err != nil {
			t.Fatal(err)
		}
		for _, res := range rep.Results {
			if want, ok := c.want[res.Name]; ok && res.Verdict != want {
				t.Errorf("%s: %s is %v, want %v", c.reason, res.Name, res.Verdict, want)
			}
		}
	}
}
