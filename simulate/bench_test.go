package simulate

import (
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

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

// BenchmarkRanks runs one fixed per-rank program (tp 8 × pp 8 of hidden 16, 8 layers, 2
// micro-batches of one sequence each) at 64, 512 and 4096 ranks by growing dp, and reports
// the execution's CPU time per rank (user + system, so other load on the machine does not
// count): flat when the runtime's coordination costs O(1) per rank.
// Run: go test -run '^$' -bench Ranks -benchtime 1x ./simulate/
func BenchmarkRanks(b *testing.B) {
	for _, dp := range []int{1, 8, 64} {
		p, err := plan.Parse(fmt.Sprintf("tp=8,pp=8,dp=%d,hidden=16,heads=8,layers=8,ffn=16,seq=8,vocab=32,batch=%d,microbatches=2,mtp=0", dp, 2*dp))
		if err != nil {
			b.Fatal(err)
		}
		c, err := Compile(p, nil)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("world=%d", p.World()), func(b *testing.B) {
			start := cpuTime()
			for b.Loop() {
				if _, err := runtime.Run(c.Programs, c.Init); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N*p.World()), "cpu-µs/rank")
		})
	}
}

// cpuTime is the process's CPU time so far (user + system).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		panic(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
