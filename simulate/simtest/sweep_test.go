package simtest

import (
	"runtime"
	"sync"
	"testing"

	"github.com/spcheck/spcheck/plan"
)

// TestSweep is the simulator's acceptance test: every plan of Sweep, reassembled by placement,
// matches the oracle (every input, parameter, activation, gradient and loss within the
// verifier's float64 tolerance, rel 1e-10).
func TestSweep(t *testing.T) {
	plans := Sweep()
	if testing.Short() {
		plans = every(plans, 7)
	}
	errs := make([]error, len(plans))
	forEach(len(plans), func(i int) {
		errs[i] = Check(plans[i])
	})
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestSweepCoverage keeps the sweep honest: at least 200 plans, and every value the issue
// names is present.
func TestSweepCoverage(t *testing.T) {
	plans := Sweep()
	if len(plans) < 200 {
		t.Fatalf("sweep has %d plans, want ≥ 200", len(plans))
	}
	seen := map[string]bool{}
	for _, p := range plans {
		for _, key := range []string{"tp", "pp", "dp", "sp", "microbatches", "mtp", "schedule"} {
			v, _ := p.Get(key)
			seen[key+"="+v] = true
		}
		for name, on := range map[string]bool{
			"partial_p2p without sp":    p.PartialP2P && p.SP == plan.SPOff && p.TP > 1 && p.PP > 1,
			"partial_p2p with sp":       p.PartialP2P && p.SP != plan.SPOff && p.TP > 1 && p.PP > 1,
			"packed":                    len(p.Packed) > 1,
			"unpacked":                  len(p.Packed) == 0,
			"tied":                      p.Tied,
			"seq divisible by tp>1":     p.TP > 1 && p.Seq%p.TP == 0,
			"seq not divisible by tp":   p.Seq%p.TP != 0,
			"vocab divisible by tp>1":   p.TP > 1 && p.Vocab%p.TP == 0,
			"vocab not divisible by tp": p.Vocab%p.TP != 0,
			"mtp under pp":              p.MTP > 0 && p.PP > 1,
		} {
			seen[name] = seen[name] || on
		}
	}
	want := []string{"tp=1", "tp=2", "tp=3", "tp=4", "pp=1", "pp=2", "pp=3", "pp=4", "dp=1", "dp=2",
		"sp=off", "sp=megatron", "sp=vllm", "microbatches=1", "microbatches=2", "microbatches=4",
		"mtp=0", "mtp=1", "mtp=2", "schedule=gpipe", "schedule=1f1b",
		"partial_p2p without sp", "partial_p2p with sp", "packed", "unpacked", "tied",
		"seq divisible by tp>1", "seq not divisible by tp", "vocab divisible by tp>1", "vocab not divisible by tp", "mtp under pp"}
	for _, w := range want {
		if !seen[w] {
			t.Errorf("the sweep never has %s", w)
		}
	}
}

func every(ps []plan.Plan, k int) []plan.Plan {
	var out []plan.Plan
	for i := 0; i < len(ps); i += k {
		out = append(out, ps[i])
	}
	return out
}

// forEach runs fn(0) … fn(n-1) on GOMAXPROCS workers and returns when all are done; fn writes
// only its own index's results.
func forEach(n int, fn func(i int)) {
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < runtime.GOMAXPROCS(0); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				fn(i)
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
}
