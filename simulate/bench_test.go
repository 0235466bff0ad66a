package simulate

import (
	"fmt"
	"os"
	"testing"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate/runtime"
)

// benchStages runs one phase of the simulator on p per iteration: compile, execute, or render
// the trace files.
func benchStages(b *testing.B, p plan.Plan) {
	b.Run("compile", func(b *testing.B) {
		for b.Loop() {
			if _, err := Compile(p, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	c, err := Compile(p, nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("execute", func(b *testing.B) {
		for b.Loop() {
			if _, err := runtime.Run(c.Programs, c.Init); err != nil {
				b.Fatal(err)
			}
		}
	})
	res, err := runtime.Run(c.Programs, c.Init)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("trace", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.TraceFiles(res); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.ReportMetric(float64(res.Stats.CommBytes), "comm-bytes")
}

// BenchmarkWorldSize simulates one fixed global model (hidden 64, 8 heads, 8 layers, seq 64,
// vocab 512, batch 8 in 8 micro-batches) split tp × pp ways, world 1 to 64.
func BenchmarkWorldSize(b *testing.B) {
	for _, tp := range []int{1, 2, 4, 8} {
		for _, pp := range []int{1, 2, 4, 8} {
			p, err := plan.Parse(fmt.Sprintf("tp=%d,pp=%d,hidden=64,heads=8,layers=8,ffn=256,seq=64,vocab=512,batch=8,microbatches=8,mtp=1", tp, pp))
			if err != nil {
				b.Fatal(err)
			}
			b.Run(fmt.Sprintf("world=%d/tp=%d/pp=%d", tp*pp, tp, pp), func(b *testing.B) { benchStages(b, p) })
		}
	}
}

// BenchmarkPlan runs the plan in $SPCHECK_BENCH_PLAN (skipped when unset): for sizing the
// largest world and model the simulator handles in a given time.
func BenchmarkPlan(b *testing.B) {
	s := os.Getenv("SPCHECK_BENCH_PLAN")
	if s == "" {
		b.Skip("set SPCHECK_BENCH_PLAN to a plan string")
	}
	p, err := plan.Parse(s)
	if err != nil {
		b.Fatal(err)
	}
	benchStages(b, p)
}
