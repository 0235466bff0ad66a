package verify

import (
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/tensor"
)

func TestParseTolFlags(t *testing.T) {
	for _, c := range scenario.Cases(t, []struct {
		in          []string
		dtypes      string // Tolerances.String()
		rules       string // pattern=rtol;…
		err, reason string
	}{
		{in: []string{"1e-6"}, dtypes: "F64=1e-06,F32=1e-06,BF16=1e-06,F16=1e-06", reason: "a plain number is every float dtype's"},
		{in: []string{"bf16=2e-2,fp32=1e-5"}, dtypes: "F32=1e-05,BF16=0.02", reason: "dtype pairs stay dtype pairs"},
		{in: []string{"^grad/=1e-8"}, rules: "^grad/=1e-8", reason: "a left side that is no dtype is a regular expression"},
		{in: []string{"a{1,2}=3"}, rules: "a{1,2}=3", reason: "a rule's regular expression may hold a comma"},
		{in: []string{"x=y=0.5"}, rules: "x=y=0.5", reason: "split at the last '='"},
		{in: []string{"b=1", "bf16=1e-1", "a=2"}, dtypes: "BF16=0.1", rules: "b=1;a=2", reason: "repeated values mix both; rules keep their order"},
		{in: []string{"(=1"}, err: `--tol "(=1"`, reason: "a malformed regular expression names the flag"},
		{in: []string{"a=-1"}, err: `"-1" is not a finite, non-negative number`, reason: "a negative tolerance is refused"},
		{in: []string{"=1"}, err: "empty regular expression", reason: "a rule needs a pattern"},
	}) {
		tol, rules, err := ParseTolFlags(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%q: err %v, want %q", c.in, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.in, err)
			continue
		}
		var rs []string
		for _, r := range rules {
			rs = append(rs, r.Pattern.String()+"="+FormatRTol(r.RTol))
		}
		if got := tol.String(); got != c.dtypes {
			t.Errorf("%q: dtypes %q, want %q", c.in, got, c.dtypes)
		}
		if got := strings.Join(rs, ";"); got != c.rules {
			t.Errorf("%q: rules %q, want %q", c.in, got, c.rules)
		}
	}
}

// A rule's tolerance comes before the dtype override and the noise reference, first rule first.
func TestRuleTakesPrecedence(t *testing.T) {
	opt, _ := ruleOptions(t, "^a=0.5", "a=0.25")
	opt.Tol = Tolerances{tensor.BF16: 0.1}
	opt.Noise = NoiseScales{"ab": {Elem: 1, Norm: 1}, "b": {Elem: 1e-3, Norm: 1e-3}}
	if r, n := opt.tolFor("ab", tensor.BF16, tensor.BF16, 0); r != 0.5 || n != NormOfRTol*0.5 {
		t.Errorf("ab: rtol %g norm %g, want the first rule's 0.5", r, n)
	}
	if r, _ := opt.tolFor("ba", tensor.BF16, tensor.BF16, 0); r != 0.25 {
		t.Errorf("ba: rtol %g, want the second rule's 0.25", r)
	}
	if r, _ := opt.tolFor("b", tensor.BF16, tensor.BF16, 0); r != 0.1 {
		t.Errorf("b: rtol %g, want the dtype override 0.1", r)
	}
}

func ruleOptions(t *testing.T, vals ...string) (Options, []TolRule) {
	t.Helper()
	_, rules, err := ParseTolFlags(vals)
	if err != nil {
		t.Fatal(err)
	}
	return Options{TolRules: rules}, rules
}
