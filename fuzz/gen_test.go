package fuzz

import (
	"math/rand"
	"testing"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
)

func TestDrawOnlyValidPlansWithEdges(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	var oneTokenPerShard, notDivisible, oneLayerPerStage, lenOne int
	for i := 0; i < 2000; i++ {
		p := Draw(r, TinySpace())
		if err := p.Validate(); err != nil {
			t.Fatalf("draw %d invalid: %v", i, err)
		}
		if p.TP > 1 && p.Seq == p.TP {
			oneTokenPerShard++
		}
		if p.TP > 1 && (p.Seq%p.TP != 0 || p.Vocab%p.TP != 0) {
			notDivisible++
		}
		if p.Layers == p.PP && p.PP > 1 {
			oneLayerPerStage++
		}
		for _, l := range p.Packed {
			if l == 1 {
				lenOne++
				break
			}
		}
	}
	for name, n := range map[string]int{"one token per shard": oneTokenPerShard, "not divisible by tp": notDivisible,
		"one layer per stage": oneLayerPerStage, "length-1 packed sequence": lenOne} {
		if n < 100 {
			t.Errorf("edge %q drawn only %d times in 2000", name, n)
		}
	}
}

func TestShrinkReachesTheMinimumOfAMonotoneFailure(t *testing.T) {
	// A stand-in failure: "tp ≥ 2, pp ≥ 2 and SP on". The minimal failing plan keeps exactly
	// those and everything else at its simplest.
	fails := func(p plan.Plan) bool { return p.TP >= 2 && p.PP >= 2 && p.SP != plan.SPOff }
	r := rand.New(rand.NewSource(7))
	for i := 0; i < 50; i++ {
		p := Draw(r, TinySpace())
		if !fails(p) {
			continue
		}
		min := shrinkFully(p, fails)
		if min.TP != 2 || min.PP != 2 || min.DP != 1 || min.MTP != 0 || min.Layers != 2 ||
			min.Microbatches != 1 || len(min.Packed) != 0 || min.Seq != 1 || min.Vocab != 2 || min.Seed != 1 {
			t.Fatalf("shrunk %q to %q, not minimal", p.String(), min.String())
		}
	}
}

// shrinkFully applies the gopter shrink loop by hand: take the first simpler plan that still
// fails, until none does.
func shrinkFully(p plan.Plan, fails func(plan.Plan) bool) plan.Plan {
	for {
		next, found := p, false
		for _, q := range Simpler(p) {
			if fails(q) {
				next, found = q, true
				break
			}
		}
		if !found {
			return p
		}
		p = next
	}
}

// TestShrinkKeepsTheBugKey: no simplification drops or changes the bug a plan runs with.
func TestShrinkKeepsTheBugKey(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for i := 0; i < 100; i++ {
		p := Draw(r, TinySpace())
		p.Bug = "some-bug"
		for _, q := range Simpler(p) {
			if q.Bug != p.Bug {
				t.Fatalf("%s simplified to %s", p, q)
			}
		}
	}
}

func TestSpacesDrawWithinTheirBounds(t *testing.T) {
	for name, s := range Spaces() {
		if err := s.Validate(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r := rand.New(rand.NewSource(1))
		for i := 0; i < 500; i++ {
			p := Draw(r, s)
			if p.TP > s.MaxTP || p.PP > s.MaxPP || p.DP > s.MaxDP || p.MTP > s.MaxMTP || p.Seq > s.MaxSeq {
				t.Fatalf("%s drew %s", name, p)
			}
		}
	}
}

// TestDrawnPlansCompileValid: Check runs the compiled programs without validating them again,
// so the compiler is held here to produce valid programs for the plans the fuzzer draws.
func TestDrawnPlansCompileValid(t *testing.T) {
	r := rand.New(rand.NewSource(2))
	for i := range 300 {
		p := Draw(r, TinySpace())
		c, err := simulate.Compile(p, nil)
		if err != nil {
			t.Fatalf("draw %d: plan %s: %v", i, p, err)
		}
		for _, prog := range c.Programs {
			if err := prog.Validate(); err != nil {
				t.Fatalf("draw %d: plan %s: rank %d: %v", i, p, prog.Rank, err)
			}
		}
	}
}
