package serving

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/tensor"
)

func TestEmitsGate(t *testing.T) {
	// TP=2, DP=2: global rank r = dp·2 + tpRank.
	cases := []struct {
		gate   Gate
		useEP  bool
		want   []int // emitting global ranks
		reason string
	}{
		{GateOld, false, []int{0, 2}, "save_each_rank off: TP rank 0 of each group"},
		{GateOld, true, []int{0, 1, 2, 3}, "save_each_rank = use_ep: every rank emits"},
		{GateNew, true, []int{0, 2}, "rank_id is the TP-local rank: one emitter per DP group"},
		{GateNew, false, []int{0, 2}, "the new gate ignores use_ep"},
		{GateGlobalRank, true, []int{0}, "rank_id as a global rank: only rank 0"},
	}
	for _, c := range scenario.Cases(t, cases) {
		var got []int
		for r := range 4 {
			if c.gate.Emits(c.useEP, 2, r/2, r%2) {
				got = append(got, r)
			}
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%s use_ep=%t: emitters %v, want %v (%s)", c.gate, c.useEP, got, c.want, c.reason)
		}
	}
}

func TestMisusePanicsWithError(t *testing.T) {
	cases := []struct {
		name   string
		call   func()
		reason string
	}{
		{"unknown gate", func() { Gate("x").Emits(false, 1, 0, 0) }, "a gate outside the catalogue has no semantics"},
		{"unknown prediction", func() { Prediction("x").PredictNextLaunch(1, nil, nil) }, "likewise for the prediction"},
		{"ragged slots", func() { PredictNextRealBsz.PredictNextLaunch(1, []int{1}, nil) }, "one is_block_step per slot"},
	}
	for _, c := range scenario.Cases(t, cases) {
		func() {
			defer func() {
				var e *Error
				if err, ok := recover().(error); !ok || !errors.As(err, &e) {
					t.Errorf("%s: want a panic with *Error (%s)", c.name, c.reason)
				}
			}()
			c.call()
		}()
	}
}

// FastDeploy #7172's two launch formulas on one step, exactly.
func TestSection33Counts(t *testing.T) {
	slt, blk := []int{4, 4, 2, 0}, []int{0, 0, 0, 1}
	if got := PredictCurrentStep.PredictNextLaunch(3, slt, blk); got != 14 {
		t.Errorf("old formula: %d, want 14 = sum(slt)+sum(blk)*4", got)
	}
	if got := PredictNextRealBsz.PredictNextLaunch(3, slt, blk); got != 16 {
		t.Errorf("new formula: %d, want 16 = next_real_bsz(4)*4", got)
	}
}

// The launch-prediction step embedded in a run: the loop itself must launch [4,4,2,0]/[0,0,0,1] at step 1
// and 16 tokens at step 2, and the pre-fix prediction must be caught at step 2 only.
func TestPredictionMultiStep(t *testing.T) {
	s, err := New(PredictionExample())
	if err != nil {
		t.Fatal(err)
	}
	var recs []StepRecord
	for !s.Done() {
		recs = append(recs, s.Step())
	}
	if got := recs[1].SeqLensThisTime[0]; !slices.Equal(got, []int{4, 4, 2, 0}) {
		t.Errorf("step 1 DP0 seq_lens_this_time %v, want [4 4 2 0]", got)
	}
	if got := recs[1].IsBlockStep[0]; !slices.Equal(got, []int{0, 0, 0, 1}) {
		t.Errorf("step 1 DP0 is_block_step %v, want [0 0 0 1]", got)
	}
	if got := recs[2].SeqLensThisTime[0]; !slices.Equal(got, []int{4, 4, 4, 4}) {
		t.Errorf("step 2 DP0 seq_lens_this_time %v, want every request at k+1", got)
	}

	cases := []struct {
		predict   Prediction
		predicted int
		under     []LaunchRecord
		reason    string
	}{
		{PredictCurrentStep, 14, []LaunchRecord{{Step: 2, DP: 0, Predicted: 14, Actual: 16, Cut: []Cut{{"D", 2}}}},
			"C's 2-token first step is reused as its next count: 2 tokens short, cut from the last slot (D)"},
		{PredictNextRealBsz, 16, nil, "every live or recovering request counted at k+1"},
	}
	for _, c := range scenario.Cases(t, cases) {
		cfg := PredictionExample()
		cfg.Predict = c.predict
		rep, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := launchAt(rep, 2, 0); got.Predicted != c.predicted || got.Actual != 16 {
			t.Errorf("%s: step 2 DP0 predicted %d actual %d, want %d and 16 (%s)", c.predict, got.Predicted, got.Actual, c.predicted, c.reason)
		}
		if got := rep.UnderPredicted(); !reflect.DeepEqual(got, c.under) {
			t.Errorf("%s: under-predictions %+v, want %+v (%s)", c.predict, got, c.under, c.reason)
		}
		if !rep.EmitOK() || len(rep.Replicas) > 0 {
			t.Errorf("%s: the prediction variant must not disturb emission or replicas: %v", c.predict, rep.Classes())
		}
	}
}

func launchAt(rep Report, step, dp int) LaunchRecord {
	for _, l := range rep.Launches {
		if l.Step == step && l.DP == dp {
			return l
		}
	}
	return LaunchRecord{Predicted: -2}
}

// Each variant is caught with its class, and its fixed form is clean on the same config.
func TestVariantsDetected(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(*Config)
		want   []Class
		reason string
	}{
		{"fixed", func(*Config) {}, nil, "post-fix gate and prediction"},
		{"old gate, pure TP", func(c *Config) { c.Gate, c.UseEP = GateOld, false }, nil, "one emitter per group without EP"},
		{"old gate under EP", func(c *Config) { c.Gate = GateOld }, []Class{ClassDuplicated}, "every TP rank emits"},
		{"global rank id", func(c *Config) { c.Gate = GateGlobalRank }, []Class{ClassLost}, "DP1's queue gets nothing"},
		{"current-step prediction", func(c *Config) { c.Predict = PredictCurrentStep }, []Class{ClassUnder}, "FastDeploy #7172: pre-fix prediction from the current step"},
		{"gated state updates", func(c *Config) { c.GateStateUpdates = true },
			[]Class{ClassReplica, ClassGatedUpdate}, "the root's broadcast hides it from the queue: only the replica checks see it"},
		{"gated state updates, global rank", func(c *Config) { c.Gate, c.GateStateUpdates = GateGlobalRank, true },
			[]Class{ClassLost, ClassReplica, ClassGatedUpdate, ClassUnfinished}, "DP1's root never advances: the loop stalls to its cap"},
	}
	for _, c := range scenario.Cases(t, cases) {
		cfg := PredictionExample()
		c.edit(&cfg)
		rep, err := Run(cfg)
		if err != nil {
			t.Fatal(err)
		}
		if got := rep.Classes(); !slices.Equal(got, c.want) {
			t.Errorf("%s: classes %v, want %v (%s)", c.name, got, c.want, c.reason)
		}
	}
}

func TestDuplicatesAreExactCopies(t *testing.T) {
	cfg := GateExample()
	cfg.Gate = GateOld
	rep, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range rep.Queues {
		for _, rr := range q.Requests {
			if rr.Verdict != EmitDuplicated || rr.Copies != cfg.TP || len(rr.Received) != cfg.TP*len(rr.Expected) {
				t.Errorf("%s: %s ×%d, %d tokens for %d; want duplicated ×tp", rr.ID, rr.Verdict, rr.Copies, len(rr.Received), len(rr.Expected))
			}
		}
	}
}

func TestGatedStateUpdateFirstMismatch(t *testing.T) {
	cfg := GateExample()
	cfg.GateStateUpdates = true
	rep, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	want := ReplicaMismatch{Step: 1, Rank: 1, Root: 0, Request: "A", Field: "seq_lens_decoder", Got: 0,
		Want: len(cfg.Verify("A", 0, PromptToken(cfg.Seed, cfg.Vocab, "A"), cfg.LaunchTokens(), 9))}
	if len(rep.Replicas) == 0 || rep.Replicas[0] != want {
		t.Errorf("first replica mismatch %+v, want %+v: r1 skipped step 0's update", rep.Replicas, want)
	}
	if got := rep.SkippedRanks(); !slices.Equal(got, []int{1, 3}) {
		t.Errorf("ranks that skipped updates %v, want the non-emitters [1 3]", got)
	}
}

func TestCheckRequestVerdicts(t *testing.T) {
	cfg := Config{Vocab: 8, Seed: 3}
	r := Request{ID: "X", MaxTokens: 4}
	want := GreedyTokens(cfg.Seed, cfg.Vocab, "X", 4)
	msg := func(step, rank int, toks ...int) Message {
		return Message{Step: step, Rank: rank, Entries: []Entry{{Request: "X", Tokens: toks}}}
	}
	bad := (want[2] + 1) % cfg.Vocab
	cases := []struct {
		name   string
		msgs   []Message
		want   EmitVerdict
		copies int
		reason string
	}{
		{"ok", []Message{msg(0, 0, want[:3]...), msg(1, 0, want[3])}, EmitOK, 1, "all tokens once"},
		{"dup", []Message{msg(0, 0, want[:3]...), msg(0, 1, want[:3]...), msg(1, 0, want[3]), msg(1, 1, want[3])}, EmitDuplicated, 2, "two emitters per step"},
		{"lost", nil, EmitLost, 0, "no message"},
		{"other request", []Message{{Step: 0, Entries: []Entry{{Request: "Y", Tokens: want}}}}, EmitLost, 0, "tokens of another request do not count"},
		{"short", []Message{msg(0, 0, want[:2]...)}, EmitIncomplete, 1, "a prefix only"},
		{"wrong", []Message{msg(0, 0, want[0], want[1], bad, want[3])}, EmitWrong, 1, "third token differs"},
		{"extra", []Message{msg(0, 0, want...), msg(1, 0, 0)}, EmitWrong, 1, "a fifth token"},
	}
	for _, c := range scenario.Cases(t, cases) {
		got := checkRequest(cfg, r, c.msgs)
		if got.Verdict != c.want || got.Copies != c.copies {
			t.Errorf("%s: %s ×%d, want %s ×%d (%s)", c.name, got.Verdict, got.Copies, c.want, c.copies, c.reason)
		}
	}
}

// randomConfig draws a small correct-variant config: arrivals, block windows, PD-decode first
// steps, K = 0 and accept rates at both ends included.
func randomConfig(seed uint64) Config {
	rng := tensor.NewRNG(seed, "serving/test/config")
	i := uint64(0)
	next := func(n int) int { i++; return rng.Intn(i, n) }
	c := Config{TP: 1 + next(3), DP: 1 + next(3), K: next(4), UseEP: next(2) == 1, Vocab: 2 + next(30),
		AcceptRate: []float64{0, 0.5, 0.8, 1}[next(4)], Seed: seed, Gate: GateNew, Predict: PredictNextRealBsz}
	for j := range 1 + next(6) {
		r := Request{ID: fmt.Sprintf("R%d", j), DP: next(c.DP), Arrive: next(4), MaxTokens: 1 + next(15)}
		r.FirstLaunch = next(c.K + 2)
		if next(2) == 1 {
			r.BlockAt, r.BlockSteps = r.Arrive+1+next(3), 1+next(2)
		}
		c.Requests = append(c.Requests, r)
	}
	return c
}

func TestFixedFormsMatchOracle(t *testing.T) {
	for seed := range uint64(200) {
		cfg := randomConfig(seed)
		rep, err := Run(cfg)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		if !rep.OK() {
			t.Fatalf("seed %d %s: %v", seed, cfg, rep.Classes())
		}
	}
}

func TestDeterministic(t *testing.T) {
	cfg := PredictionExample()
	cfg.Gate, cfg.Predict = GateOld, PredictCurrentStep
	a, _ := Run(cfg)
	b, _ := Run(cfg)
	if !reflect.DeepEqual(a, b) {
		t.Error("two runs of one config differ")
	}
	cfg.Seed++
	c, _ := Run(cfg)
	if reflect.DeepEqual(a.Queues, c.Queues) {
		t.Error("the seed does not reach the tokens")
	}
}

// Inserting a request while the loop runs is the same as scheduling it up front.
func TestInsertMatchesSchedule(t *testing.T) {
	cfg := PredictionExample()
	want, _ := Run(cfg)
	late := cfg.Requests[2] // C, arrives at step 1
	cfg.Requests = slices.Delete(slices.Clone(cfg.Requests), 2, 3)
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Step()
	if err := s.Insert(Request{ID: "Z", Arrive: 0, MaxTokens: 1}); err == nil {
		t.Error("insert into the past accepted")
	}
	if err := s.Insert(late); err != nil {
		t.Fatal(err)
	}
	for !s.Done() {
		s.Step()
	}
	got := s.Report()
	// C now sits after D in DP0's slots, so compare per-request results, not slot order.
	for _, q := range want.Queues {
		for _, rr := range q.Requests {
			if g := findRequest(got, rr.ID); !reflect.DeepEqual(g.Received, rr.Received) || g.Verdict != rr.Verdict {
				t.Errorf("%s: inserted run got %v %s, scheduled run %v %s", rr.ID, g.Received, g.Verdict, rr.Received, rr.Verdict)
			}
		}
	}
}

func findRequest(rep Report, id string) RequestResult {
	for _, q := range rep.Queues {
		for _, rr := range q.Requests {
			if rr.ID == id {
				return rr
			}
		}
	}
	return RequestResult{}
}

func TestValidate(t *testing.T) {
	cases := []struct {
		name   string
		edit   func(*Config)
		field  string
		reason string
	}{
		{"tp 0", func(c *Config) { c.TP = 0 }, "tp/dp", "a mesh needs a rank"},
		{"huge world", func(c *Config) { c.TP, c.DP = 1000, 1000 }, "tp/dp", "bounded for fuzzing"},
		{"overflowing world", func(c *Config) { c.TP, c.DP = 1<<32, 1<<32 }, "tp/dp", "tp·dp wraps to 0"},
		{"overflowing block window", func(c *Config) { c.Requests[0].BlockAt, c.Requests[0].BlockSteps = 1, math.MaxInt }, `requests[0] "A"`, "BlockAt+BlockSteps wraps"},
		{"k<0", func(c *Config) { c.K = -1 }, "k", "draft count"},
		{"vocab 1", func(c *Config) { c.Vocab = 1 }, "vocab", "a wrong draft needs another token"},
		{"accept < 0", func(c *Config) { c.AcceptRate = -0.5 }, "accept_rate", "a probability"},
		{"accept NaN", func(c *Config) { c.AcceptRate = math.NaN() }, "accept_rate", "NaN compares false"},
		{"no gate", func(c *Config) { c.Gate = "" }, "gate", "a run names its gate"},
		{"no prediction", func(c *Config) { c.Predict = "" }, "predict", "a run names its prediction"},
		{"dup id", func(c *Config) { c.Requests[1].ID = "A" }, `requests[1] "A"`, "ids key the queues"},
		{"comma id", func(c *Config) { c.Requests[0].ID = "A,B" }, `requests[0] "A,B"`, "ids are listed comma-separated"},
		{"dp out of range", func(c *Config) { c.Requests[0].DP = 2 }, `requests[0] "A"`, "no such group"},
		{"no tokens", func(c *Config) { c.Requests[0].MaxTokens = 0 }, `requests[0] "A"`, "a request generates ≥ 1 token"},
		{"first launch > k+1", func(c *Config) { c.Requests[0].FirstLaunch = 5 }, `requests[0] "A"`, "1 + at most k drafts"},
		{"blocked before running", func(c *Config) { c.Requests[0].BlockSteps = 1 }, `requests[0] "A"`, "block_at must follow arrival"},
		{"too many tokens", func(c *Config) { c.Requests[0].MaxTokens = maxTotalTokens }, "requests", "Σ max_tokens bounded for fuzzing"},
		{"huge max_tokens", func(c *Config) { c.Requests[0].MaxTokens = math.MaxInt }, `requests[0] "A"`, "Σ would wrap"},
	}
	for _, c := range scenario.Cases(t, cases) {
		cfg := GateExample()
		c.edit(&cfg)
		_, err := Run(cfg)
		var e *Error
		if !errors.As(err, &e) || e.Field != c.field {
			t.Errorf("%s: error %v, want one on field %q (%s)", c.name, err, c.field, c.reason)
		}
	}
	if err := GateExample().Validate(); err != nil {
		t.Errorf("GateExample invalid: %v", err)
	}
}

// The gate variants are caught exactly where they bite: the old gate
// duplicates iff EP with TP > 1; a global rank id loses every request outside DP group 0.
func TestGateVariantsOnRandomConfigs(t *testing.T) {
	for seed := range uint64(100) {
		base := randomConfig(seed)
		outside := false
		for _, r := range base.Requests {
			outside = outside || r.DP > 0
		}
		cases := []struct {
			gate   Gate
			want   Class
			bites  bool
			reason string
		}{
			{GateOld, ClassDuplicated, base.UseEP && base.TP > 1, "save_each_rank=use_ep makes every TP rank emit"},
			{GateGlobalRank, ClassLost, outside, "only global rank 0 emits"},
		}
		for _, c := range scenario.Cases(t, cases) {
			cfg := base
			cfg.Gate = c.gate
			rep, err := Run(cfg)
			if err != nil {
				t.Fatal(err)
			}
			if got := slices.Contains(rep.Classes(), c.want); got != c.bites {
				t.Errorf("seed %d %s: %s reported %t, want %t (%s)", seed, cfg, c.want, got, c.bites, c.reason)
			}
		}
	}
}
