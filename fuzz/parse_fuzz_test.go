package fuzz

import (
	"testing"

	"github.com/spcheck/spcheck/plan"
)

// FuzzPlanParse: plan.Parse never panics, and a plan it accepts is valid, prints as a string
// Parse reads back to the same plan, and so does its compact form. In CI, run with a counted
// budget: go test -run '^$' -fuzz FuzzPlanParse -fuzztime 2000x ./fuzz/
func FuzzPlanParse(f *testing.F) {
	for _, s := range []string{"", "tp=2,pp=2,sp=megatron,packed=4:3:5", "tp=0", "packed=4:0", "seq=99,packed=1:1",
		"tp=2,,pp=2", "hidden=6,heads=2", "mtp_lambda=1e309", "dtype=bf16,seed=18446744073709551615", "bug=x,sp=vllm",
		"packed=none", "tp=1=2", "seed=-1", " tp = 2 ", "tied=TRUE", "vocab=16777216,tp=16777216"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := plan.Parse(s)
		if err != nil {
			return
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("Parse(%q) accepted an invalid plan: %v", s, err)
		}
		for _, form := range []string{p.String(), Compact(p)} {
			q, err := plan.Parse(form)
			if err != nil || q.String() != p.String() {
				t.Fatalf("Parse(%q) = %q, which parses back to %q (%v)", s, form, q.String(), err)
			}
		}
	})
}
