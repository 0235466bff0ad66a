package simtest

import (
	"flag"
	"fmt"
	"testing"
	"time"
)

var lowprecN = flag.Int("simtest.lowprec", 0, "run the low-precision sweep over this many random correct plans (fp32, bf16, fp16 in turn) and print the worst excess per dtype")

// TestLowPrecisionSweep: random correct plans executed in fp32, bf16 and fp16 verify against the
// oracle at the noise-referenced tolerance. CI runs a subset; -simtest.lowprec N runs N plans
// and prints the worst ×tol per dtype (docs/tolerance.md records the figures).
func TestLowPrecisionSweep(t *testing.T) {
	n := *lowprecN
	if n == 0 {
		n = 6
		if testing.Short() {
			n = 3
		}
	}
	plans := LowPrecisionPlans(n)
	type out struct {
		x    float64
		name string
		err  error
		took time.Duration
	}
	res := make([]out, len(plans))
	forEach(len(plans), func(i int) {
		start := time.Now()
		x, name, err := CheckExcess(plans[i])
		res[i] = out{x, name, err, time.Since(start)}
		if *lowprecN > 0 { // a long sweep reports as it goes
			fmt.Printf("plan %d %s: %.3f ×tol on %s (%v) err=%v\n", i, plans[i].DType, x, name, time.Since(start).Round(time.Millisecond), err != nil)
		}
	})
	worst := map[string]out{}
	worstPlan := map[string]string{}
	for i, r := range res {
		if r.err != nil {
			t.Error(r.err)
		}
		d := plans[i].DType.String()
		if r.x >= worst[d].x {
			worst[d] = r
			worstPlan[d] = plans[i].String()
		}
	}
	if *lowprecN > 0 {
		for _, d := range LowPrecisionDTypes {
			w := worst[d.String()]
			fmt.Printf("%s: worst %.3f ×tol on %s in plan %s\n", d, w.x, w.name, worstPlan[d.String()])
		}
	}
}

var sweepLowPrec = flag.Bool("simtest.sweep-lowprec", false, "run all 288 plans of Sweep in low precision (TestSweepLowPrecision); default: every 24th")

// TestSweepLowPrecision: the acceptance sweep's plans, each executed in fp32, bf16 or fp16 in
// turn, verify at the noise-referenced tolerance and report no per-rank bias.
func TestSweepLowPrecision(t *testing.T) {
	plans := Sweep()
	if !*sweepLowPrec {
		plans = every(plans, 24)
	}
	for i := range plans {
		plans[i].DType = LowPrecisionDTypes[i%len(LowPrecisionDTypes)]
	}
	errs := make([]error, len(plans))
	excess := make([]float64, len(plans))
	forEach(len(plans), func(i int) {
		excess[i], _, errs[i] = CheckExcess(plans[i])
	})
	worst := map[string]float64{}
	for i, err := range errs {
		if err != nil {
			t.Error(err)
		}
		d := plans[i].DType.String()
		worst[d] = max(worst[d], excess[i])
	}
	if *sweepLowPrec {
		fmt.Printf("288-plan sweep in low precision: worst ×tol %v\n", worst)
	}
}
