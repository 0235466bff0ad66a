package verify_test

import (
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
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
	for _, c := range scenario.Cases(t, cases) {
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

// TestSkipHashesKeepsVerdicts: without MD5s every verdict and metric is the same; only the
// hashes are empty.
func TestSkipHashesKeepsVerdicts(t *testing.T) {
	for _, s := range []vt.Scenario{vt.Seed001("develop"), vt.Seed002(), vt.ScaledTP(), vt.Clean()} {
		ref, err := s.Ref.Trace()
		if err != nil {
			t.Fatal(err)
		}
		cand, err := s.Cand.Trace()
		if err != nil {
			t.Fatal(err)
		}
		with, err1 := verify.Compare(ref, cand, verify.Options{})
		without, err2 := verify.Compare(ref, cand, verify.Options{SkipHashes: true})
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		for i, r := range with.Results {
			o := without.Results[i]
			if r.Verdict != o.Verdict || r.MaxAbs != o.MaxAbs || o.RefMD5 != "" || o.CandMD5 != "" || (r.RefMD5 == "" && r.Verdict != verify.Extra) {
				t.Fatalf("%s: %+v vs %+v", r.Name, r, o)
			}
		}
	}
}
