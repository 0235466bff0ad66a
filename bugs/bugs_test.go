package bugs

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/serving"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/simtest"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

func mustPlan(t *testing.T, s string) plan.Plan {
	t.Helper()
	p, err := plan.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func mustBug(t *testing.T, name string) *Bug {
	t.Helper()
	b, err := Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func run(t *testing.T, name, planStr string) *Outcome {
	t.Helper()
	b := mustBug(t, name)
	p := b.MinimalPlan()
	if planStr != "" {
		p = mustPlan(t, planStr)
	}
	o, err := Run(b, p)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return o
}

// example runs a worked example and fails on any number that is not the expected one.
func example(t *testing.T, name string) *ExampleResult {
	t.Helper()
	e, ok := LookupExample(name)
	if !ok {
		t.Fatalf("no example %s", name)
	}
	r, err := e.Run()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Facts {
		if !f.OK() {
			t.Errorf("%s %s: spcheck has %s, expected %s", name, f.What, f.Got, f.Want)
		}
	}
	if len(r.Facts) == 0 {
		t.Errorf("%s: no numbers", name)
	}
	return r
}

// fact returns the value spcheck computed for a fact.
func fact(t *testing.T, r *ExampleResult, what string) string {
	t.Helper()
	for _, f := range r.Facts {
		if f.What == what {
			return f.Got
		}
	}
	t.Fatalf("%s: no fact %q", r.Example.Name, what)
	return ""
}

// TestCatalogue: every bug has the fields the commands print, a class, a source; training bugs
// are registered simulate variants with a valid minimal plan on which they can show; the names
// of their examples exist.
func TestCatalogue(t *testing.T) {
	all := All()
	if len(all) < 18 {
		t.Fatalf("catalogue has %d bugs", len(all))
	}
	for _, b := range all {
		if b.Summary == "" || b.Source == "" || ClassTitle[b.Class] == "" || b.Expect.Shows == "" {
			t.Errorf("%s: incomplete entry %+v", b.Name, b)
		}
		for _, e := range b.Examples {
			if _, ok := LookupExample(e); !ok {
				t.Errorf("%s: no worked example %s", b.Name, e)
			}
		}
		switch b.Domain {
		case Training:
			v, err := VariantOf(b.MinimalPlan())
			if err != nil || v == nil || v.Name != b.Name || v.Programs == nil || v.Applies == nil {
				t.Errorf("%s: no simulate variant with a rewrite and Applies (%v)", b.Name, err)
			}
			if err := b.CanShow(b.MinimalPlan()); err != nil {
				t.Errorf("%s: its minimal plan cannot show it: %v", b.Name, err)
			}
		case Serving:
			if b.Config == nil || b.Fixed == nil || len(b.Expect.Classes) == 0 {
				t.Errorf("%s: a serving bug needs Config, Fixed and expected classes", b.Name)
			}
		}
	}
	for _, name := range []string{"no-such-bug", "serving.gate-old"} {
		if _, err := VariantOf(plan.Plan{Bug: name}); err == nil || !strings.Contains(err.Error(), "partial-p2p-under-sp") {
			t.Errorf("plan naming %s: %v (want an error listing the training bugs)", name, err)
		}
	}
	if _, err := Lookup("no-such-bug"); err == nil || !strings.Contains(err.Error(), "partial-p2p-under-sp") {
		t.Errorf("unknown bug: %v (want the known names listed)", err)
	}
}

// TestGate is `spcheck check`: every case passes, and each kind is there.
func TestGate(t *testing.T) {
	g := Gate()
	for _, c := range g.Cases {
		if !c.Pass {
			t.Errorf("%s %s: %s (saw: %s; reproduce: %s)", c.Kind, c.Name, strings.Join(c.Problems, "; "), c.Detail, c.Command)
		}
	}
	if g.Count(CaseBug) != len(All()) || g.Count(CaseFixed) != len(All()) || g.Count(CaseCorrect) != len(CorrectPlans) || g.Count(CaseExample) != len(Examples()) {
		t.Errorf("gate cases: %d bugs, %d fixed, %d correct, %d examples", g.Count(CaseBug), g.Count(CaseFixed), g.Count(CaseCorrect), g.Count(CaseExample))
	}
	if !g.OK() || !strings.Contains(g.Summary(), "PASSED") {
		t.Errorf("summary %q", g.Summary())
	}
}

// TestMismatchesFail: an expectation the outcome does not meet is reported, so the gate can
// fail (here: the right bug with a wrong first tensor, a wrong signature and wrong positions).
func TestMismatchesFail(t *testing.T) {
	o := run(t, "mtp-cu-seqlens-shifted", "")
	if len(o.Mismatches()) != 0 {
		t.Fatalf("unexpected mismatches %v", o.Mismatches())
	}
	b := *o.Bug
	b.Expect.First, b.Expect.Positions = "act/layers.0.attn_norm", []int{4, 7}
	o.Bug = &b
	got := strings.Join(o.Mismatches(), "; ")
	for _, want := range []string{`first divergence "act/mtp.1.layer.attn.context", want "act/layers.0.attn_norm"`, "positions [4 7 8 9], want [4 7]"} {
		if !strings.Contains(got, want) {
			t.Errorf("mismatches %q lack %q", got, want)
		}
	}
}

// TestSection14: seed 001's table, both branches: every receiver holds the same gathered
// tensor, the lost chunks per rank are the document's, and the seed-001 rendering order holds.
func TestSection14(t *testing.T) {
	dev := example(t, "seed001-develop")
	if got := fact(t, dev, "lost TP0") + " " + fact(t, dev, "lost TP1"); got != "[100 120 140 160] [180 200 220 240]" {
		t.Errorf("develop lost %s", got)
	}
	uni := example(t, "seed001-unify")
	if got := fact(t, uni, "lost TP0") + " " + fact(t, uni, "lost TP1"); got != "[50 60 70 80] [90 100 110 120]" {
		t.Errorf("unify lost %s", got)
	}
	for _, r := range []*ExampleResult{dev, uni} {
		first := r.Report.First()
		if len(first) != 1 || first[0].Signature == nil || first[0].Signature.Kind != verify.SigIdenticalReceivers || first[0].Diagnosis.Level != verify.LevelChunk {
			t.Errorf("%s: first divergence %v is not a chunk-level identical-receivers diagnosis", r.Example.Name, first)
		}
	}
	// The model-level bug: receivers of both stage boundaries identical, blocks lost.
	o := run(t, "partial-p2p-under-sp", "")
	if o.Signature != SigIdenticalReceivers || !slices.Equal(o.Ranks, []int{2, 3}) {
		t.Errorf("model-level: %s on ranks %v", o.Signature, o.Ranks)
	}
}

// TestSection18: the norm-grad partials 3 and 7 (replica mismatch), AVG 5; on the model the
// ranks' partial grads add up to the reference and AVG is ×1/tp.
func TestSection18(t *testing.T) {
	example(t, "norm-grad")
	o := run(t, "sp-norm-grad-not-reduced", "")
	ref, err := pipeline.Reference(o.Plan)
	if err != nil {
		t.Fatal(err)
	}
	want := logical(t, ref, "grad/layers.0.attn_norm.weight")
	var sum *tensor.Dense
	for _, f := range o.Trace.Files {
		for _, e := range f.Entries {
			if e.Meta.Name != "grad/layers.0.attn_norm.weight" {
				continue
			}
			x, err := f.Tensor(e)
			if err != nil {
				t.Fatal(err)
			}
			if sum == nil {
				sum = x.Clone()
			} else {
				sum.AddInPlace(x)
			}
		}
	}
	if sum == nil || maxDiff(sum, want) > 1e-12 {
		t.Errorf("the ranks' partial norm grads do not add up to the reference")
	}
	for _, tp := range []int{2, 4} {
		o := run(t, "sp-norm-grad-avg", fmt.Sprintf("tp=%d,sp=megatron,mtp=0,heads=4,seq=8", tp))
		if o.Signature != SigScaled || o.Diagnosed.Scale != 1/float64(tp) || o.Diagnosed.ScaleName != "1/tp" {
			t.Errorf("tp=%d: AVG gives %s ×%g (%s), want ×1/%d (1/tp)", tp, o.Signature, o.Diagnosed.Scale, o.Diagnosed.ScaleName, tp)
		}
	}
}

func logical(t *testing.T, tr *trace.Trace, name string) *tensor.Dense {
	t.Helper()
	ls, err := verify.Assemble(tr)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.Name == name {
			return l.Dense()
		}
	}
	t.Fatalf("no tensor %s", name)
	return nil
}

func maxDiff(a, b *tensor.Dense) float64 {
	d := 0.0
	for i := range a.Data {
		d = math.Max(d, math.Abs(a.Data[i]-b.Data[i]))
	}
	return d
}

// TestSection23: vLLM's residual slice at offset 0: the worked rows, and on the model TP rank 0
// right, the others wrong, from the first fused add after a stage's unsharded norm — also at
// tp=4 and at an MTP depth's input without PP.
func TestSection23(t *testing.T) {
	r := example(t, "vllm33322")
	if got := fact(t, r, "buggy rank1 residual_out (local)"); got != "[[155 -34] [200 -50]]" {
		t.Errorf("rank 1's residual %s", got)
	}
	for _, c := range scenario.Cases(t, []struct{ plan, first, reason string }{
		{"", "act/layers.1.attn_residual", "the minimal plan: stage 1's first fused add"},
		{"tp=4,pp=2,sp=vllm,mtp=0,heads=4", "act/layers.1.attn_residual", "tp=4: ranks 1–3 all wrong"},
		{"tp=2,sp=vllm,mtp=1", "act/mtp.1.layer.attn_residual", "no PP: the MTP depth's input is a full residual too"},
	}) {
		o := run(t, "vllm-residual-slice-offset0", c.plan)
		if o.Signature != SigTP0Right || o.First != c.first {
			t.Errorf("%s: %s at %s, want %s at %s", c.reason, o.Signature, o.First, SigTP0Right, c.first)
		}
	}
}

// TestSection24: the pre-#24021 transport loses [233,-6] and [355,66]; the receiver that keeps
// its shard fails at the stage's first norm, named.
func TestSection24(t *testing.T) {
	example(t, "vllm24021")
	o := run(t, "vllm-pp-residual-not-gathered", "")
	if o.Verdict != VerdictError || o.Feeds != "act/layers.1.attn_norm" || !strings.Contains(o.Detail, "add of shapes [2 8 16] and [2 4 16]") {
		t.Errorf("got %s: %s", o.Verdict, o.Detail)
	}
}

// TestSection32And33: the gate table and the launch counts (14 vs 16).
func TestSection32And33(t *testing.T) {
	example(t, "gate-table")
	r := example(t, "launch-prediction")
	if got := fact(t, r, "old: sum(slt)+sum(blk)*4"); got != "14" {
		t.Errorf("old prediction %s", got)
	}
	o, err := Run(mustBug(t, "serving.predict-current-step"), plan.Plan{})
	if err != nil {
		t.Fatal(err)
	}
	under := o.Serving.UnderPredicted()
	if len(under) == 0 || under[0].Predicted != 14 || under[0].Actual != 16 {
		t.Errorf("under-predictions %+v, want the first 14 vs 16", under)
	}
	o, err = Run(mustBug(t, "serving.gate-old"), plan.Plan{})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(o.Serving.Classes(), []serving.Class{serving.ClassDuplicated}) || o.Serving.EmitVerdict() != "duplicates x2" {
		t.Errorf("old gate under EP: %v %s", o.Serving.Classes(), o.Serving.EmitVerdict())
	}
}

// TestSection43: both cu_seqlens formulas corrupt exactly the valid positions 4, 7, 8, 9; the
// original cu_seqlens verifies.
func TestSection43(t *testing.T) {
	example(t, "cu-seqlens")
	for _, name := range []string{"mtp-cu-seqlens-shifted", "mtp-cu-seqlens-compacted"} {
		if o := run(t, name, ""); !slices.Equal(o.Positions, []int{4, 7, 8, 9}) {
			t.Errorf("%s: wrong valid positions %v, want [4 7 8 9]", name, o.Positions)
		}
	}
	if err := simtest.Check(mustPlan(t, "mtp=1,packed=4:3:5")); err != nil {
		t.Error(err)
	}
}

// TestSection44: the −100 labels' logsumexp terms, exactly: the buggy MTP loss is
// Σ mask·ℓ / Σ mask with ℓ = logsumexp(z) at ignored labels, computed from the oracle's logits.
func TestSection44(t *testing.T) {
	o := run(t, "mtp-loss-counts-ignore-index", "")
	ref, err := pipeline.Reference(o.Plan)
	if err != nil {
		t.Fatal(err)
	}
	z := logical(t, ref, "act/mtp.1.logits")
	lab := logical(t, ref, "input/mtp.1.labels")
	mask := logical(t, ref, "input/mtp.1.loss_mask")
	v := z.Shape[len(z.Shape)-1]
	var num, den, ignored float64
	for i, m := range mask.Data {
		row := z.Data[i*v : (i+1)*v]
		mx := slices.Max(row)
		s := 0.0
		for _, x := range row {
			s += math.Exp(x - mx)
		}
		l := mx + math.Log(s)
		if lab.Data[i] != nn.IgnoreIndex {
			l -= row[int(lab.Data[i])]
		} else if m != 0 {
			ignored++
		}
		num += m * l
		den += m
	}
	if ignored == 0 {
		t.Fatal("the minimal plan has no ignored MTP label with loss mask 1")
	}
	got := logical(t, o.Trace, "loss/mtp.1").Data[0]
	if want := num / den; math.Abs(got-want) > 1e-12*math.Abs(want) {
		t.Errorf("buggy loss/mtp.1 = %v, want Σ mask·ℓ/Σ mask = %v (%v ignored labels counted)", got, want, ignored)
	}
}

// TestSection45: the forward and the loss agree bit for bit, the recompute does not, grads
// diverge; a correct recompute (no toggle) is bit-identical to none.
func TestSection45(t *testing.T) {
	example(t, "recompute-positions")
	o := run(t, "recompute-config-toggled", "")
	fixed := o.Plan
	fixed.Bug = ""
	ok, err := simulate.Run(fixed, nil)
	if err != nil {
		t.Fatal(err)
	}
	d, err := verify.Diff(ok, o.Trace, verify.Options{}, trace.Loss, trace.Activation)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range d.Entries {
		if !e.Equal() {
			t.Errorf("%s differs from the correct run's (the forward must agree bit for bit)", e.Name)
		}
	}
	if !slices.Contains(o.Recomputed, "act/mtp.1.layer.attn.q_rope") || o.Report.Verified() {
		t.Errorf("recomputed %v, verified %v", o.Recomputed, o.Report.Verified())
	}
}

// TestSection47: the eh_proj adjoint: [2,4],[6,8] in the worked example; on the model the grads
// upstream of the projection are ×tp, for tp = 2 and 4.
func TestSection47(t *testing.T) {
	example(t, "eh-proj")
	for _, tp := range []int{2, 4} {
		o := run(t, "mtp-eh-proj-reduce-scatter", fmt.Sprintf("tp=%d,mtp=1,heads=4", tp))
		if o.Signature != SigScaled || o.Diagnosed.Scale != float64(tp) || o.Diagnosed.ScaleName != "tp" {
			t.Errorf("tp=%d: %s ×%g (%s), want ×%d (tp)", tp, o.Signature, o.Diagnosed.Scale, o.Diagnosed.ScaleName, tp)
		}
	}
}

// TestRollAfterScatter: the mbridge ids are wrong exactly at the last k positions of each TP
// shard (where the correct roll had a non-zero id), and 0 there.
func TestRollAfterScatter(t *testing.T) {
	ids := tensor.FromData([]int{1, 8}, []float64{1, 2, 3, 4, 5, 6, 0, 0}) // depth 2 of 8 tokens: the last two are the fill
	got := RollAfterScatter(ids, 2, 3)                                     // shards [0,3) [3,6) [6,8) at depth 2
	if want := []float64{1, 0, 0, 4, 0, 0, 0, 0}; !slices.Equal(got.Data, want) {
		t.Errorf("RollAfterScatter = %v, want %v", got.Data, want)
	}
	o := run(t, "mtp-ids-rolled-after-sp-scatter", "tp=4,sp=megatron,mtp=1,heads=4")
	for _, i := range o.Positions {
		if i != 1 && i != 3 && i != 5 {
			t.Errorf("tp=4 (shards of 2): wrong id at position %d, not a shard end", i)
		}
	}
	if len(o.Positions) == 0 {
		t.Error("no wrong ids at tp=4")
	}
}

// TestApplies is the contract the fuzzer relies on: on sweep plans where a bug can show it is
// detected, and where it cannot (Applies says why) the bugged run verifies clean.
func TestApplies(t *testing.T) {
	sweep := simtest.Sweep()
	for _, b := range All() {
		if b.Domain != Training {
			continue
		}
		shown, hidden := 0, 0
		for i, p := range sweep {
			if (i*7+len(b.Name))%5 != 0 { // a different fifth of the sweep per bug
				continue
			}
			can := b.CanShow(p) == nil
			if (can && shown >= 3) || (!can && hidden >= 2) {
				continue
			}
			o, err := Run(b, p)
			if err != nil {
				t.Fatalf("%s on %s: %v", b.Name, p, err)
			}
			switch {
			case can && !o.Detected():
				t.Errorf("%s on %s: can show, not detected\n  reproduce: %s", b.Name, p, o.Command)
			case !can && o.Detected():
				t.Errorf("%s on %s: %v, yet detected: %s", b.Name, p, b.CanShow(p), o.Detail)
			}
			if can {
				shown++
			} else {
				hidden++
			}
		}
		canAny := slices.ContainsFunc(sweep, func(p plan.Plan) bool { return b.CanShow(p) == nil })
		if shown == 0 && canAny {
			t.Errorf("%s: no sweep plan it can show on was tried", b.Name)
		} else if shown == 0 { // the tiny float64 sweep never meets its conditions: its minimal plan stands in
			if o, err := Run(b, b.MinimalPlan()); err != nil || !o.Detected() {
				t.Errorf("%s: no sweep plan can show it, and on its minimal plan it is not detected (%v)", b.Name, err)
			}
		}
	}
}
