package serving

import (
	"fmt"
	"strings"
)

// Gate is the emission-gate variant: which ranks send their accepted tokens to their DP group's
// message queue (FastDeploy speculate_save_output.cc).
type Gate string

const (
	// GateOld is the pre-fix gate: emit iff save_each_rank || rank_id == 0, with
	// save_each_rank = use_ep and rank_id = the TP-local rank. Under EP with TP > 1 every TP
	// rank emits: duplicates ×tp.
	GateOld Gate = "old"
	// GateNew is the post-fix gate (#7172): emit iff rank_id == 0, rank_id = the TP-local rank.
	// One emitter per DP group.
	GateNew Gate = "new"
	// GateGlobalRank is the reviewer's hypothetical: the new gate fed a global rank id. Only
	// global rank 0 emits; every DP group ≥ 1 is silently dropped.
	GateGlobalRank Gate = "global-rank"
)

// Gates lists the gate variants in catalogue order.
var Gates = []Gate{GateOld, GateNew, GateGlobalRank}

// Prediction is the variant of the overlapped schedule's next-launch token-count prediction
// (FastDeploy gpu_model_runner.py _predict_next_launch_token_num).
type Prediction string

const (
	// PredictCurrentStep is the pre-fix formula Σ seq_lens_this_time + Σ is_block_step·(k+1):
	// it reuses the current step's per-request counts.
	PredictCurrentStep Prediction = "current-step"
	// PredictNextRealBsz is the post-fix formula next_real_bsz·(k+1), next_real_bsz =
	// #(seq_lens_this_time > 0) + #(is_block_step > 0).
	PredictNextRealBsz Prediction = "next-real-bsz"
)

// Predictions lists the prediction variants in catalogue order.
var Predictions = []Prediction{PredictCurrentStep, PredictNextRealBsz}

// Request is one decode request as the scheduler sees it. Its slot in its DP group's batch is
// its position among that group's requests in Config.Requests (slots are never reused), so the
// packed launch order is deterministic.
type Request struct {
	ID          string
	DP          int // DP group that serves it (its engine and message queue)
	Arrive      int // step at which it is inserted (already prefilled: PD-disaggregated decode)
	MaxTokens   int // tokens it generates before it stops
	FirstLaunch int // tokens launched at its first decode step (1 verified + drafts); 0 means K+1
	BlockAt     int // first step of its block-step window (preempted: launches nothing)
	BlockSteps  int // length of the window; 0 = never blocked
}

// Config is one serving run: the mesh, the speculative-decoding setup, the variants switched
// on, and the requests. The zero values of Gate and Predict are invalid on purpose: a run always
// names the variant it exercises.
type Config struct {
	TP, DP     int     // mesh: global rank r has TP rank r%TP and DP group r/TP
	K          int     // num_speculative_tokens: MTP draft tokens per step (0 = no drafts)
	UseEP      bool    // EP deployment: FastDeploy passes save_each_rank = use_ep
	Vocab      int     // token ids are in [0, Vocab)
	AcceptRate float64 // probability that a draft token equals the target's greedy token
	Seed       uint64
	Gate       Gate
	Predict    Prediction
	// GateStateUpdates is the side-condition bug of #7172's review: the gate's early return
	// also skips the state updates (speculate_update …) that every replica must run, so the
	// ranks that do not emit fall out of lockstep.
	GateStateUpdates bool
	Requests         []Request
}

// Limits that bound any valid config, fuzzed ones included, to a few seconds at the extreme (a
// stalled replica running to the cap with every limit at once) and milliseconds normally: a run is at
// most maxStart + 1 + maxTotalTokens steps (StepCap) of maxWorld ranks × maxRequests slots ×
// (maxK+1) tokens.
const (
	maxWorld       = 64   // TP·DP
	maxK           = 16   // draft tokens per step
	maxRequests    = 64   // requests per config
	maxTotalTokens = 4096 // Σ MaxTokens over the requests
	maxStart       = 256  // latest Arrive, and latest end BlockAt+BlockSteps of a block window
)

// Error is a problem with a Config (returned by Validate) or a misuse of a pure function by
// its caller (panicked with).
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string { return fmt.Sprintf("serving: %s: %s", e.Field, e.Msg) }

// LaunchTokens is what a live request launches in a steady decode step: 1 verified + K drafts
// (FastDeploy's token_num_one_step; K = 0 is plain decoding with 1).
func (c Config) LaunchTokens() int { return c.K + 1 }

// firstLaunch is the token count of r's first decode step.
func (c Config) firstLaunch(r Request) int {
	if r.FirstLaunch == 0 {
		return c.LaunchTokens()
	}
	return r.FirstLaunch
}

// Validate reports the first thing that makes the config unrunnable.
func (c Config) Validate() error {
	bad := func(field, format string, a ...any) error { return &Error{field, fmt.Sprintf(format, a...)} }
	switch {
	case c.TP < 1 || c.DP < 1:
		return bad("tp/dp", "must be ≥ 1 (got tp=%d dp=%d)", c.TP, c.DP)
	case c.TP > maxWorld || c.DP > maxWorld || c.TP*c.DP > maxWorld: // factors first: no overflow
		return bad("tp/dp", "world tp·dp=%d exceeds %d", c.TP*c.DP, maxWorld)
	case c.K < 0 || c.K > maxK:
		return bad("k", "must be in [0, %d] (got %d)", maxK, c.K)
	case c.Vocab < 2:
		return bad("vocab", "must be ≥ 2 (a wrong draft needs a second token), got %d", c.Vocab)
	case !(c.AcceptRate >= 0 && c.AcceptRate <= 1):
		return bad("accept_rate", "must be in [0, 1], got %v", c.AcceptRate)
	case !contains(Gates, c.Gate):
		return bad("gate", "unknown gate %q (want one of %v)", c.Gate, Gates)
	case !contains(Predictions, c.Predict):
		return bad("predict", "unknown prediction %q (want one of %v)", c.Predict, Predictions)
	}
	if len(c.Requests) > maxRequests {
		return bad("requests", "%d requests exceed %d", len(c.Requests), maxRequests)
	}
	seen := map[string]bool{}
	total := 0
	for i, r := range c.Requests {
		f := fmt.Sprintf("requests[%d] %q", i, r.ID)
		switch {
		case r.ID == "" || strings.ContainsAny(r.ID, ", \t\n"):
			return bad(f, "id must be non-empty without commas or spaces")
		case seen[r.ID]:
			return bad(f, "duplicate id")
		case r.DP < 0 || r.DP >= c.DP:
			return bad(f, "dp group %d out of range [0, %d)", r.DP, c.DP)
		case r.Arrive < 0 || r.Arrive > maxStart:
			return bad(f, "arrive %d out of range [0, %d]", r.Arrive, maxStart)
		case r.MaxTokens < 1 || r.MaxTokens > maxTotalTokens:
			return bad(f, "max_tokens %d out of range [1, %d]", r.MaxTokens, maxTotalTokens)
		case r.FirstLaunch < 0 || r.FirstLaunch > c.LaunchTokens():
			return bad(f, "first_launch %d out of range [1, k+1=%d] (0 = k+1)", r.FirstLaunch, c.LaunchTokens())
		case r.BlockSteps < 0 || r.BlockAt < 0 || r.BlockSteps > maxStart || r.BlockAt > maxStart ||
			r.BlockAt+r.BlockSteps > maxStart:
			return bad(f, "block window [%d, %d) must lie in [0, %d]", r.BlockAt, r.BlockAt+r.BlockSteps, maxStart)
		case r.BlockSteps > 0 && r.BlockAt <= r.Arrive:
			// A block step preempts a running request, so it must have launched once.
			return bad(f, "block_at %d must follow arrive %d", r.BlockAt, r.Arrive)
		}
		seen[r.ID] = true
		total += r.MaxTokens
		if total > maxTotalTokens {
			return bad("requests", "Σ max_tokens exceeds %d", maxTotalTokens)
		}
	}
	return nil
}

// String is a one-line description for report headers and repro lines.
func (c Config) String() string {
	return fmt.Sprintf("tp=%d,dp=%d,k=%d,ep=%t,gate=%s,predict=%s,gate_state_updates=%t,accept=%g,vocab=%d,seed=%d,requests=%d",
		c.TP, c.DP, c.K, c.UseEP, c.Gate, c.Predict, c.GateStateUpdates, c.AcceptRate, c.Vocab, c.Seed, len(c.Requests))
}

func contains[T comparable](s []T, v T) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// GateExample is the gate table's deployment (FastDeploy #7172 and its review): TP=2, DP=2 under EP (4 ranks); DP0 serves A,B
// and DP1 serves C,D, all from step 0. It runs the post-fix gate and prediction; switch
// Gate/Predict/UseEP to get the other rows.
func GateExample() Config {
	return Config{TP: 2, DP: 2, K: 3, UseEP: true, Vocab: 32, AcceptRate: 0.6, Seed: 1,
		Gate: GateNew, Predict: PredictNextRealBsz,
		Requests: []Request{
			{ID: "A", DP: 0, MaxTokens: 9},
			{ID: "B", DP: 0, MaxTokens: 7},
			{ID: "C", DP: 1, MaxTokens: 8},
			{ID: "D", DP: 1, MaxTokens: 6},
		}}
}

// PredictionExample is the launch-prediction step of FastDeploy #7172, embedded in a multi-step run (k=3): in DP0, A, B
// and D run from step 0; C is inserted at step 1 as a PD-decode request whose first step
// launches 2 tokens; D is in a block step at step 1. Step 1 therefore launches
// seq_lens_this_time=[4,4,2,0] with is_block_step=[0,0,0,1], and step 2 launches 16 tokens.
// DP1 runs two plain requests. It runs the post-fix variants.
func PredictionExample() Config {
	return Config{TP: 2, DP: 2, K: 3, UseEP: true, Vocab: 32, AcceptRate: 0.6, Seed: 1,
		Gate: GateNew, Predict: PredictNextRealBsz,
		Requests: []Request{
			{ID: "A", DP: 0, MaxTokens: 12},
			{ID: "B", DP: 0, MaxTokens: 12},
			{ID: "C", DP: 0, Arrive: 1, MaxTokens: 12, FirstLaunch: 2},
			{ID: "D", DP: 0, MaxTokens: 12, BlockAt: 1, BlockSteps: 1},
			{ID: "E", DP: 1, MaxTokens: 10},
			{ID: "F", DP: 1, MaxTokens: 10},
		}}
}
