package verify_test

import (
	"bytes"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
	vt "github.com/spcheck/spcheck/verify/verifytest"
)

// TestRenameRules: conditions, arithmetic offsets, first match wins, errors name the line.
func TestRenameRules(t *testing.T) {
	rules := `
# Megatron stage-local layer numbers → global
@pp=1 ^(grad|act)/layers\.(\d+)\. => ${1}/layers.${2+4}.
^module\.(?P<rest>.*)$ => ${rest}
^x$ => y$$
`
	rs, err := verify.ParseRules(strings.NewReader(rules), "rules")
	if err != nil {
		t.Fatal(err)
	}
	coords := func(pp int) func(string) (int, bool) {
		return func(a string) (int, bool) { return pp, a == "pp" }
	}
	cases := []struct {
		name, want string
		pp         int
		reason     string
	}{
		{"grad/layers.0.mlp.w", "grad/layers.4.mlp.w", 1, "stage 1's layer 0 is global layer 4"},
		{"grad/layers.0.mlp.w", "grad/layers.0.mlp.w", 0, "the condition does not hold on stage 0"},
		{"module.act/x", "act/x", 0, "named groups expand"},
		{"x", "y$", 0, "$$ is a dollar"},
		{"other", "other", 1, "names no rule matches are kept"},
	}
	for _, c := range scenario.Cases(t, cases) {
		got, err := rs.Apply(c.name, coords(c.pp))
		if err != nil || got != c.want {
			t.Errorf("%s: %q → %q, %v; want %q", c.reason, c.name, got, err, c.want)
		}
	}
	bad := []struct{ rules, want, reason string }{
		{"^a=>b", "no ' => '", "the arrow needs spaces"},
		{"^(a => ${2}", "bad regex", "unbalanced parenthesis"},
		{"^(a) => ${2}", "no group", "a group the regex lacks"},
		{"@pp 1 ^a => b", "not axis=coordinate", "a malformed condition"},
		{"^(a) => ${1*2}", "offset", "only + and - offsets"},
	}
	for _, b := range scenario.Cases(t, bad) {
		if _, err := verify.ParseRules(strings.NewReader(b.rules), "r"); err == nil || !strings.Contains(err.Error(), b.want) || !strings.Contains(err.Error(), "r:1") {
			t.Errorf("%s: %v, want an error at r:1 containing %q", b.reason, err, b.want)
		}
	}
	rs, _ = verify.ParseRules(strings.NewReader(`^l(\w+)$ => l${1+1}`), "r")
	if _, err := rs.Apply("lx", coords(0)); err == nil || !strings.Contains(err.Error(), "not an integer") {
		t.Errorf("arithmetic on a non-integer group: %v", err)
	}
}

// TestTolerances: --tol parsing, the per-dtype defaults, and depth scaling.
func TestTolerances(t *testing.T) {
	cases := []struct {
		in     string
		want   verify.Tolerances
		err    string
		reason string
	}{
		{"", nil, "", "no override"},
		{"1e-6", verify.Tolerances{tensor.F64: 1e-6, tensor.F32: 1e-6, tensor.BF16: 1e-6, tensor.F16: 1e-6}, "", "one number for every float dtype"},
		{"bf16=2e-2, fp32=1e-5", verify.Tolerances{tensor.BF16: 2e-2, tensor.F32: 1e-5}, "", "pairs with spaces"},
		{"calibrate", nil, "spcheck compare handles it", "calibration is a procedure of the CLI (package calibrate), not a tolerance value"},
		{"-1", nil, "non-negative", "negative"},
		{"f8=1", nil, "unknown dtype", "unknown dtype"},
		{"NaN", nil, "finite", "NaN"},
	}
	for _, c := range scenario.Cases(t, cases) {
		got, err := verify.ParseTolerances(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s: %q gave %v, want an error with %q", c.reason, c.in, err, c.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: %q gave %v, %v; want %v", c.reason, c.in, got, err, c.want)
		}
	}
	// A 1e-9 relative error passes fp32 but fails fp64 unless the depth makes room for it.
	mk := func(dt tensor.DType, v float64) *trace.Trace {
		tr, err := vt.Single("t", vt.Provenance{}).Add(0, "x", vt.Meta("x", trace.Activation, 1, ""), dt, []int{1}, v).Trace()
		if err != nil {
			t.Fatal(err)
		}
		return tr
	}
	depth := func(string) int { return 10000 } // √10⁴ = 100: rtol 1e-8
	for _, c := range scenario.Cases(t, []struct {
		dt     tensor.DType
		opt    verify.Options
		want   verify.Verdict
		reason string
	}{
		{tensor.F64, verify.Options{}, verify.Diverged, "fp64 rtol 1e-10"},
		{tensor.F64, verify.Options{Depth: depth}, verify.Close, "depth 10⁴ scales fp64's tolerance to 1e-8"},
		{tensor.F64, verify.Options{Depth: depth, Tol: verify.Tolerances{tensor.F64: 1e-10}}, verify.Diverged, "an explicit override is not scaled"},
	}) {
		rep, err := verify.Compare(mk(c.dt, 1), mk(c.dt, 1+1e-9), c.opt)
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Results[0].Verdict; got != c.want {
			t.Errorf("%s: %s, want %s", c.reason, got, c.want)
		}
	}
}

// TestSameReportOnAnyWorkerCount: the pooled path gives the same report as the sequential one.
func TestSameReportOnAnyWorkerCount(t *testing.T) {
	defer verify.SetParallelMin(0)()
	render := func(workers int) string {
		var b bytes.Buffer
		for _, s := range vt.All() {
			ref, cand, err := s.Traces()
			if err != nil {
				t.Fatal(err)
			}
			rep, err := verify.Compare(ref, cand, verify.Options{Workers: workers})
			if err != nil {
				t.Fatal(err)
			}
			if err := reports.JSON(&b, rep); err != nil {
				t.Fatal(err)
			}
		}
		return b.String()
	}
	one := render(1)
	for _, w := range []int{2, 3, runtime.GOMAXPROCS(0) + 2} {
		if got := render(w); got != one {
			t.Errorf("%d workers give a different report", w)
		}
	}
}
