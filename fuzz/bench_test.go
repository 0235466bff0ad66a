package fuzz

import (
	"runtime/debug"
	"sort"
	"testing"
	"time"
)

// benchGCPercent is what spcheck fuzz runs with (cmd/spcheck fuzzGCPercent).
const benchGCPercent = 400

// BenchmarkVerifiedPlans: correct-simulator plans verified per second through a counted
// campaign (draw, oracle, simulator, comparison; an algebra and a serving case in every ten)
// on GOMAXPROCS workers, for the mesh2 space (tiny plans: every mesh degree ≤ 2) and the
// default tiny space (degrees up to 4). Run: go test -run '^$' -bench VerifiedPlans ./fuzz/
func BenchmarkVerifiedPlans(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(benchGCPercent))
	for _, name := range []string{"mesh2", "tiny"} {
		b.Run(name, func(b *testing.B) {
			var plans int
			var el float64
			for i := 0; b.Loop(); i++ {
				s, err := Run(Config{Variants: testCatalogue, Seed: int64(i + 1), Count: 500, Space: Spaces()[name]})
				if err != nil || s.Failed() {
					b.Fatal(err, s.Counterexamples)
				}
				plans += s.Cases[PropEquivalence]
				el += s.Seconds
			}
			b.ReportMetric(float64(plans)/el, "plans/s")
		})
	}
}

// BenchmarkTimeToDetect: the mutation score's detection of every bug from 5 fresh seeds each
// (TinySpace, 30 s budget per campaign), steered (plans drawn where the bug can show) and blind
// (plans drawn as for the correct simulator): the median time to detect per bug (the table),
// the slowest of those medians, and the shrink time. Run with -benchtime 1x (a few minutes):
// go test -run '^$' -bench TimeToDetect -benchtime 1x ./fuzz/
func BenchmarkTimeToDetect(b *testing.B) {
	defer debug.SetGCPercent(debug.SetGCPercent(benchGCPercent))
	for _, blind := range []bool{false, true} {
		b.Run(map[bool]string{false: "steered", true: "blind"}[blind], func(b *testing.B) {
			for b.Loop() {
				rs, err := Mutation(MutationConfig{Variants: testCatalogue, Seed: time.Now().UnixNano(), Trials: 5, Budget: 30 * time.Second,
					Space: TinySpace(), Blind: blind})
				if err != nil {
					b.Fatal(err)
				}
				for _, r := range rs {
					b.Logf("%-40s %s", r.Bug, r.verdict())
				}
				var worst, shrink float64
				var shrinks []float64
				for _, r := range rs {
					worst = max(worst, r.MedianDetect())
					if r.First != nil {
						shrink += r.First.ShrinkSeconds
						shrinks = append(shrinks, r.First.ShrinkSeconds)
					}
				}
				sort.Float64s(shrinks)
				b.ReportMetric(worst, "slowest-median-detect-s")
				b.ReportMetric(shrinks[len(shrinks)-1], "max-shrink-s")
				b.ReportMetric(shrink/float64(len(shrinks)), "mean-shrink-s")
				if d, n := Score(rs); d < n {
					b.Errorf("mutation score %d/%d", d, n)
				}
			}
		})
	}
}
