package fuzz

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"slices"
	"strings"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/prop"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/verify"
)

// Failure is a plan that did not verify: the verifier's report, or the error that stopped the
// run (a collective mismatch or deadlock, a planner panic).
type Failure struct {
	Plan   plan.Plan
	Report *verify.Report // nil when Err is set
	Err    error
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return fmt.Sprintf("plan %s: %v", f.Plan, f.Err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "plan %s does not verify", f.Plan)
	for _, r := range f.Report.First() {
		fmt.Fprintf(&b, "; first divergence %s (%s, max rel %.3g)", r.Name, r.Verdict, r.MaxRel)
	}
	return b.String()
}

// Check runs p (with its bug variant v, nil for none) through the oracle, the simulator and the verifier; nil when every tensor is
// within tolerance. It compares on the calling goroutine (a campaign runs plans in parallel),
// skips the MD5s, which only a printed report needs, and does not validate the compiled
// programs again (TestDrawnPlansCompileValid holds the compiler to that).
func Check(p plan.Plan, v *simulate.Variant) *Failure { return check(p, v, 0, false) }

// check is Check with at most maxDiagnosed block diagnoses (0: the verifier's default), and
// with the tensors' MD5s and the programs' validation when the report is to be printed.
func check(p plan.Plan, v *simulate.Variant, maxDiagnosed int, printed bool) *Failure {
	opt := verify.Options{Workers: 1, MaxDiagnosed: maxDiagnosed, SkipHashes: !printed}
	o, err := pipeline.Run(p, v, pipeline.Simulator{Unchecked: !printed}, pipeline.Options{Verify: opt})
	if err == nil && o.RunErr != nil {
		err = o.RunErr
	}
	switch {
	case err != nil:
		return &Failure{Plan: p, Err: err}
	case !o.Report.Verified():
		return &Failure{Plan: p, Report: o.Report}
	}
	return nil
}

// Target is what the plan properties run: the correct simulator (Bug "") or one bug variant
// of the catalogue, over a space of plans.
type Target struct {
	Bug   string
	Space Space
	// Variants is the catalogue Bug is looked up in (the caller's: package bugs' Variants,
	// or a test's own).
	Variants []*simulate.Variant
	// Blind draws and shrinks without asking where the bug can show: the generator is the
	// correct simulator's (Draw with the bug key set), so detection measures what equivalence
	// fuzzing would find, not what a steered search finds.
	Blind bool
}

// variant is the target's bug variant (nil for the correct simulator or an unknown name).
func (t Target) variant() *simulate.Variant { return lookupVariant(t.Variants, t.Bug) }

// lookupVariant finds the variant called name in vs (nil if none).
func lookupVariant(vs []*simulate.Variant, name string) *simulate.Variant {
	for _, v := range vs {
		if name != "" && v.Name == name {
			return v
		}
	}
	return nil
}

// Validate reports an unknown bug name, listing the known ones.
func (t Target) Validate() error {
	if t.variant() != nil || t.Bug == "" {
		return nil
	}
	return fmt.Errorf("unknown bug %q (known: %s)", t.Bug, strings.Join(MutationBugs(t.Variants), ", "))
}

// normalise sets the bug key and applies the variant's plan rewrite, so the plan shows what
// runs and no shrink step is one the rewrite undoes. It reports false for a plan the rewrite
// makes invalid.
func (t Target) normalise(p plan.Plan) (plan.Plan, bool) {
	p.Bug = t.Bug
	if v := t.variant(); v != nil && v.Plan != nil {
		p.Packed = slices.Clone(p.Packed)
		v.Plan(&p)
	}
	return p, p.Validate() == nil
}

// maxDraws bounds the draws Gen makes looking for a plan on which the bug can show; a variant
// that shows on none of them gives an undecided case.
const maxDraws = 200

// Draw draws one plan of the target on which its bug can show (ok false after maxDraws tries).
func (t Target) Draw(r *rand.Rand) (plan.Plan, bool) {
	for range maxDraws {
		if p, ok := t.normalise(Draw(r, t.Space)); ok && (t.Blind || t.CanShow(p) == nil) {
			return p, true
		}
	}
	return plan.Plan{}, false
}

// CanShow says why the target's bug cannot show on p, or nil when it can (always nil for the
// correct simulator). Beyond the variant's own Applies, a plan whose compiled programs and
// starting tensors are those of the correct plan cannot show the bug: the rewrite found
// nothing to rewrite.
func (t Target) CanShow(p plan.Plan) error {
	if t.Bug == "" {
		return nil
	}
	v := t.variant()
	if v == nil {
		return t.Validate()
	}
	if err := v.CanShow(p); err != nil {
		return err
	}
	bad, err := simulate.Compile(p, v)
	if err != nil {
		return fmt.Errorf("does not compile: %w", err)
	}
	q := p
	q.Bug = ""
	good, err := simulate.Compile(q, nil)
	if err != nil {
		return fmt.Errorf("the correct plan does not compile: %w", err)
	}
	if sameCompiled(bad, good) {
		return errors.New("the variant changes nothing in this plan's programs")
	}
	return nil
}

// sameCompiled compares two compilations' ops, inputs and starting tensors (not the plan
// strings, which differ by the bug key).
func sameCompiled(a, b *simulate.Compiled) bool {
	if len(a.Programs) != len(b.Programs) {
		return false
	}
	for r, pa := range a.Programs {
		pb := b.Programs[r]
		if !reflect.DeepEqual(pa.Ops, pb.Ops) || !slices.Equal(pa.Inputs, pb.Inputs) || len(a.Init[r]) != len(b.Init[r]) {
			return false
		}
		for s, x := range a.Init[r] {
			if y := b.Init[r][s]; y == nil || !tensor.BitEqual(x, y) {
				return false
			}
		}
	}
	return true
}

// Gen draws the target's plans. Its shrinker keeps the bug key (Simpler never touches it),
// re-applies the variant's rewrite, and its sieve drops simpler plans on which the bug cannot
// show, so a detection counterexample shrinks to the smallest plan that still shows the bug,
// not to one where the bug is simply absent.
func (t Target) Gen() gopter.Gen {
	return func(gp *gopter.GenParameters) *gopter.GenResult {
		p, ok := t.Draw(gp.Rng)
		if !ok {
			return gopter.NewEmptyResult(reflect.TypeOf(plan.Plan{}))
		}
		return t.result(p)
	}
}

// Const is the generator of the one plan p, with the target's shrinker (a corpus plan).
func (t Target) Const(p plan.Plan) gopter.Gen {
	return func(*gopter.GenParameters) *gopter.GenResult { return t.result(p) }
}

func (t Target) result(p plan.Plan) *gopter.GenResult {
	res := gopter.NewGenResult(p, func(v any) gopter.Shrink { return t.shrink(v.(plan.Plan)) })
	if t.Bug != "" && !t.Blind {
		res.Sieve = func(v any) bool { return t.CanShow(v.(plan.Plan)) == nil }
	}
	return res
}

// shrink is ShrinkPlan over normalised candidates.
func (t Target) shrink(p plan.Plan) gopter.Shrink {
	var cands []plan.Plan
	seen := map[string]bool{p.String(): true}
	for _, q := range Simpler(p) {
		if q, ok := t.normalise(q); ok && !seen[q.String()] {
			seen[q.String()] = true
			cands = append(cands, q)
		}
	}
	return shrinkList(cands)
}

// Property is "every plan of the target verifies". For the correct simulator it is the
// equivalence property, which must hold; with a bug on it is the detection property, which
// must fail, and its shrunk counterexample is the smallest plan that shows the bug. observe,
// if set, sees every plan checked (the draw, then each shrink candidate) and its failure.
func (t Target) Property(observe func(plan.Plan, *Failure)) gopter.Prop {
	return t.property(t.Gen(), observe)
}

// property is Property over the plans of g (the target's generator, or one corpus plan with
// the target's shrinker).
func (t Target) property(g gopter.Gen, observe func(plan.Plan, *Failure)) gopter.Prop {
	return prop.ForAll(func(p plan.Plan) *gopter.PropResult {
		f := Check(p, t.variant())
		if observe != nil {
			observe(p, f)
		}
		if f != nil {
			return &gopter.PropResult{Status: gopter.PropFalse, Labels: []string{f.Error()}}
		}
		return &gopter.PropResult{Status: gopter.PropTrue}
	}, g)
}
