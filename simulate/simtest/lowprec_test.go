package simtest

import (
	"flag"
	"fmt"
	"runtime"
	"sync"
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
		n = 9
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
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				start := time.Now()
				x, name, err := CheckExcess(plans[i])
				res[i] = out{x, name, err, time.Since(start)}
			}
		}()
	}
	for i := range plans {
		work <- i
	}
	close(work)
	wg.Wait()
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
