package plan

import (
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
)

func TestStringParseRoundTrip(t *testing.T) {
	cases := []struct {
		reason string
		in     string
	}{
		{"defaults", ""},
		{"parallel keys", "tp=2,pp=2,dp=2,sp=megatron,microbatches=2,batch=4,schedule=gpipe"},
		{"packed sets seq", "packed=4:3:5,mtp=2,dtype=bf16,seed=9"},
	}
	for _, c := range scenario.Cases(t, cases) {
		p, err := Parse(c.in)
		if err != nil {
			t.Fatalf("%s: %v", c.reason, err)
		}
		q, err := Parse(p.String())
		if err != nil || q.String() != p.String() {
			t.Fatalf("%s: %q → %q (%v)", c.reason, p.String(), q.String(), err)
		}
		if q, err := Parse(p.Short()); err != nil || q.String() != p.String() {
			t.Fatalf("%s: Short %q → %q (%v)", c.reason, p.Short(), q.String(), err)
		}
	}
	p, _ := Parse("seq=12,packed=4:3:5")
	if p.Seq != 12 || p.CuSeqlens()[3] != 12 {
		t.Fatalf("packed must set seq: %v", p.CuSeqlens())
	}
}

func TestEveryKeyIsDescribed(t *testing.T) {
	for _, k := range Keys() {
		if Describe(k) == "" {
			t.Errorf("plan key %s has no description (descriptions in parse.go)", k)
		}
	}
}

func TestInvalidPlansSayWhy(t *testing.T) {
	for _, c := range scenario.Cases(t, []struct{ reason, in string }{
		{"heads not divisible by tp", "heads=2,tp=4"},
		{"odd head dim", "hidden=6,heads=2"},
		{"more stages than layers", "pp=3,layers=2"},
		{"unknown key", "tensor_parallel=2"},
		{"bad packed", "packed=4:0"},
		{"unknown sp style", "sp=ring"},
		{"NaN lambda", "mtp_lambda=NaN"},
		{"infinite lambda", "mtp_lambda=Inf"},
		{"a key given twice is not last-wins", "tp=2,tp=4"},
		{"packed and an explicit seq disagree", "packed=4:3,seq=8"},
		{"a size past the cap", "hidden=100000000"},
	}) {
		if _, err := Parse(c.in); err == nil {
			t.Errorf("%s: %q parsed without error", c.reason, c.in)
		}
	}
}

func TestZeroSizesAreErrorsNotPanics(t *testing.T) {
	for _, s := range []string{"tp=0", "pp=0", "dp=0", "microbatches=0", "heads=0", "hidden=0"} {
		if _, err := Parse(s); err == nil {
			t.Errorf("%q parsed without error", s)
		}
	}
}
