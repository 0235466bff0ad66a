package reports_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/fuzz"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/serving"
	"github.com/spcheck/spcheck/verify/verifytest"
)

// fuzzSummary is a campaign with one counterexample whose evidence is rep (a verifier's report)
// or run (a serving run).
func fuzzSummary(t *testing.T) *fuzz.Summary {
	return &fuzz.Summary{Seed: 7, Bug: "sp-norm-grad-avg", Count: 12, Shards: 1, ShardsRun: []int{0},
		Cases: map[string]int{fuzz.PropDetection: 3}, Discarded: 2, Seconds: 1.25,
		Counterexamples: []fuzz.Counterexample{{Property: fuzz.PropDetection, Bug: "sp-norm-grad-avg", Case: 2, CaseSeed: 99,
			Drawn: "tp=4,pp=2,sp=megatron,bug=sp-norm-grad-avg", Shrunk: "tp=2,sp=megatron,bug=sp-norm-grad-avg", ShrinkSteps: 4,
			DetectSeconds: 0.5, ShrinkSeconds: 0.25, Report: report(t, verifytest.ScaledTP()),
			Reproduce: "spcheck verify --plan 'tp=2,sp=megatron,bug=sp-norm-grad-avg'"}}}
}

// TestFuzzOutcomeGolden: the end of a campaign with a counterexample (its seed, shrunk plan,
// command and the verifier's report) and without one.
func TestFuzzOutcomeGolden(t *testing.T) {
	var b bytes.Buffer
	if err := reports.FuzzOutcome(&b, fuzzSummary(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "fuzz-outcome.txt", b.Bytes())
	for _, c := range scenarioCases(t, []outcomeCase{
		{&fuzz.Summary{Cases: map[string]int{fuzz.PropEquivalence: 8, fuzz.PropAlgebra: 1, fuzz.PropServing: 1}, Seconds: 2},
			"fuzz: 8 equivalence, 1 algebra, 1 serving in 2.0s\nfuzz: every property held\n", "the correct simulator held"},
		{&fuzz.Summary{Bug: "x", Discarded: 3, CorpusRerun: 1},
			"fuzz: no cases in 0.0s, 1 corpus plans re-run, 3 discarded (no plan drawn on which the bug can show)\nfuzz: bug x was not detected\n",
			"a hunted bug that was never found says so, with what was discarded"},
	}) {
		b.Reset()
		if err := reports.FuzzOutcome(&b, c.s); err != nil {
			t.Fatal(err)
		}
		if b.String() != c.want {
			t.Errorf("%s: %q, want %q", c.reason, b.String(), c.want)
		}
	}
}

type outcomeCase struct {
	s      *fuzz.Summary
	want   string
	reason string
}

// TestFuzzSummaryRoundTrip: a shard's summary file keeps each counterexample's evidence as
// text, so that fuzz --merge prints what the shard printed.
func TestFuzzSummaryRoundTrip(t *testing.T) {
	s := fuzzSummary(t)
	cfg := serving.PredictionExample()
	cfg.Predict = serving.PredictCurrentStep
	run, err := serving.Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Counterexamples = append(s.Counterexamples, fuzz.Counterexample{Property: fuzz.PropServing, Case: 5, Shrunk: "initialState=serving tp=2",
		Diagnosis: "serving checks broken: [launch-under-predicted]", Serving: &run})
	var live bytes.Buffer
	for _, cx := range s.Counterexamples {
		if err := reports.Counterexample(&live, s.Seed, cx); err != nil {
			t.Fatal(err)
		}
	}
	var file bytes.Buffer
	if err := reports.FuzzSummaryJSON(&file, s); err != nil {
		t.Fatal(err)
	}
	back, err := fuzz.ReadSummary(&file, "shard.json")
	if err != nil {
		t.Fatal(err)
	}
	var merged bytes.Buffer
	if err := reports.FuzzMerge(&merged, back); err != nil {
		t.Fatal(err)
	}
	head, rest, _ := strings.Cut(merged.String(), "\n")
	if want := "fuzz merge: seed 7, shards [0] of 1: 3 detection, 2 counterexample(s)"; head != want {
		t.Errorf("merge header %q, want %q", head, want)
	}
	if rest != live.String() {
		t.Errorf("the merged counterexamples differ from the live ones:\n%s", diffLines(live.String(), rest))
	}
	for _, want := range []string{"first divergence", "LaunchPrediction  FAIL", "serving checks broken"} {
		if !strings.Contains(rest, want) {
			t.Errorf("the merged counterexamples lack %q", want)
		}
	}
}

// TestMutationTableGolden: detected bugs with their shrunk plans (default keys dropped, the
// bug key too), a serving scenario cut to the column's width, and a survivor with its reason.
func TestMutationTableGolden(t *testing.T) {
	long := "initialState=serving tp=2 dp=2 k=3 ep=true seed=250856 gate=old predict=next-real-bsz gate_state_updates=false sequential=[Drain]"
	rs := []fuzz.MutationResult{
		{Bug: "sp-norm-grad-avg", Trials: 3, Detected: 3, Detect: []float64{0.5, 0.25, 2}, Cases: []int{4, 2, 9},
			First: &fuzz.Counterexample{Shrunk: "tp=2,sp=megatron,bug=sp-norm-grad-avg", ShrinkSteps: 6, ShrinkSeconds: 0.75}},
		{Bug: "serving.gate-old", Serving: true, Trials: 1, Detected: 1, Detect: []float64{0.125}, Cases: []int{1},
			First: &fuzz.Counterexample{Shrunk: long + "\nmore", ShrinkSteps: 7, ShrinkSeconds: 0.0625}},
		{Bug: "mtp-cu-seqlens-shifted", Trials: 1, Why: "not found within 30s"},
	}
	var b bytes.Buffer
	if err := reports.MutationTable(&b, rs); err != nil {
		t.Fatal(err)
	}
	golden(t, "fuzz-mutation.txt", b.Bytes())
	if !strings.Contains(b.String(), "mutation score: 2/3 bugs detected") {
		t.Errorf("no score line:\n%s", b.String())
	}
}
