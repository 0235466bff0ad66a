package fuzz

import (
	"testing"

	"github.com/leanovate/gopter"
	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/plan"
)

// The properties run with small fixed budgets: a few seconds in all on 2 cores.

func TestEquivalencePropertyHolds(t *testing.T) {
	params := gopter.DefaultTestParametersWithSeed(2)
	params.MinSuccessfulTests = 40
	props := gopter.NewProperties(params)
	props.Property("every plan of TinySpace verifies against the oracle", Target{Variants: testCatalogue, Space: TinySpace()}.Property(nil))
	props.TestingRun(t)
}

// TestDetectionFindsEveryBug: with each bug on (the catalogue's, this package's test variants
// and the serving bugs), a counted campaign of Mesh2Space from a fixed seed finds a
// counterexample. Shrinking is off here (TestShrunkPlansAreMinimal shrinks); the mutation
// score (spcheck fuzz --mutation) runs the same detection on the full space from fresh seeds.
func TestDetectionFindsEveryBug(t *testing.T) {
	if n := len(testCatalogue); n < 4+len(testVariants) {
		t.Fatalf("only %d bug variants: the catalogue gave too few", n)
	}
	reach, _ := Reachable(testCatalogue, Mesh2Space())
	for _, bug := range MutationBugs(reach) {
		s, err := Run(Config{Variants: testCatalogue, Seed: 1, Count: 40, Bug: bug, Space: Mesh2Space(), MaxShrinks: -1})
		if err != nil {
			t.Fatal(err)
		}
		if !s.Failed() {
			t.Errorf("%s: 40 cases found nothing (%v, %d discarded)", bug, s.Cases, s.Discarded)
		}
	}
}

// TestShrunkPlansAreMinimal: a detection counterexample shrinks to the bug's minimal plan — the
// catalogue's partial-P2P bug to tp=2, pp=2, SP on, one layer per stage, one token — and no
// single simplification of the shrunk plan on which the bug can show still fails.
func TestShrunkPlansAreMinimal(t *testing.T) {
	cases := []struct {
		reason string
		bug    string
		want   func(p plan.Plan) bool
	}{
		{"partial P2P under SP (seed 001): tp=2, pp=2, SP on, one layer per stage, the smallest sequence",
			"partial-p2p-under-sp", func(p plan.Plan) bool {
				return p.TP == 2 && p.PP == 2 && p.SP != plan.SPOff && p.PartialP2P && p.Layers == 2 && p.Seq == 1
			}},
		{"eh_proj gather whose backward reduce-scatters: tp=2 and one MTP depth",
			testEHProjAdjoint, func(p plan.Plan) bool { return p.TP == 2 && p.PP == 1 && p.MTP == 1 && p.SP == plan.SPOff }},
	}
	for _, c := range scenario.Cases(t, cases) {
		s, err := Run(Config{Variants: testCatalogue, Seed: 1, Count: 20, Bug: c.bug, Space: Mesh2Space()})
		if err != nil || !s.Failed() {
			t.Fatalf("%s: %v %v", c.reason, err, s)
		}
		p, err := plan.Parse(s.Counterexamples[0].Shrunk)
		if err != nil {
			t.Fatal(err)
		}
		// Simplest everywhere the bug does not need: one replica, one micro-batch, unpacked,
		// the smallest dims the mesh allows, and the bug key kept.
		simplest := p.DP == 1 && p.Microbatches == 1 && len(p.Packed) == 0 && p.Batch == 1 && p.Vocab == 2 &&
			p.Heads == p.TP && p.FFN == p.TP && p.Layers == p.PP && p.Bug == c.bug
		if !c.want(p) || !simplest {
			t.Errorf("%s: shrunk to %s", c.reason, Compact(p))
		}
		tg := Target{Variants: testCatalogue, Bug: c.bug, Space: Mesh2Space()}
		for _, q := range Simpler(p) {
			if q, ok := tg.normalise(q); ok && tg.CanShow(q) == nil && Check(q, tg.variant()) != nil {
				t.Errorf("%s: shrunk to %s, but the simpler %s still fails", c.reason, Compact(p), Compact(q))
			}
		}
	}
}

// TestDetectionDrawsOnlyPlansWhereTheBugCanShow: the generator of a bug needing pp > 1, SP
// and partial P2P draws only such plans, and its shrinker never leaves them.
func TestDetectionDrawsOnlyPlansWhereTheBugCanShow(t *testing.T) {
	tg := Target{Variants: testCatalogue, Bug: "partial-p2p-under-sp", Space: Mesh2Space()}
	gp := gopter.DefaultGenParameters()
	for i := 0; i < 2; i++ {
		res := tg.Gen()(gp)
		v, ok := res.Retrieve()
		if !ok {
			t.Fatal("no plan drawn")
		}
		p := v.(plan.Plan)
		if p.PP < 2 || p.TP < 2 || p.SP == plan.SPOff || !p.PartialP2P || p.Bug != tg.Bug {
			t.Fatalf("drew %s, on which the bug cannot show", Compact(p))
		}
		for s := res.Shrinker(p).Filter(res.Sieve); ; {
			q, ok := s()
			if !ok {
				break
			}
			if qp := q.(plan.Plan); qp.PP < 2 || qp.SP == plan.SPOff || qp.Bug != tg.Bug {
				t.Fatalf("shrink candidate %s of %s cannot show the bug", Compact(qp), Compact(p))
			}
		}
	}
}

func TestUnknownBugIsAnError(t *testing.T) {
	if _, err := Run(Config{Variants: testCatalogue, Seed: 1, Count: 1, Bug: "no-such-bug"}); err == nil {
		t.Fatal("an unknown bug ran")
	}
}

func TestCompactParsesBackToThePlan(t *testing.T) {
	for _, s := range []string{"tp=2,pp=2,sp=megatron,partial_p2p=true,mtp=0,seq=1", "mtp=1,packed=4:3:5", "", "seq=8,bug=x"} {
		p, err := plan.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		q, err := plan.Parse(Compact(p))
		if err != nil || q.String() != p.String() {
			t.Errorf("%q: compact %q parses to %q (%v)", s, Compact(p), q.String(), err)
		}
	}
}
