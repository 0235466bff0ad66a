package bugs

import "github.com/spcheck/spcheck/serving"

// The serving bugs of FastDeploy's MTP decode loop (PaddlePaddle/FastDeploy #7172, cherry-picked
// as #7192) are variants of
// package serving's decode loop; their names match package fuzz's serving bugs.

// fixedServing is the post-fix loop: TP-local rank-0 gate, next-real-bsz prediction, state
// updates on every replica.
func fixedServing(c *serving.Config) {
	c.Gate, c.Predict, c.GateStateUpdates = serving.GateNew, serving.PredictNextRealBsz, false
}

// gateExample is the gate table's deployment (TP=2, DP=2 under EP) with f applied.
func gateExample(f func(c *serving.Config)) func() serving.Config {
	return func() serving.Config {
		c := serving.GateExample()
		f(&c)
		return c
	}
}

func servingBugs() []*Bug {
	return []*Bug{
		{
			Name:    "serving.gate-old",
			Source:  "FastDeploy custom_ops/gpu_ops/speculate_decoding/speculate_save_output.cc before #7172 (save_each_rank = use_ep)",
			Class:   C5,
			Domain:  Serving,
			Summary: "emission gate `save_each_rank || rank_id == 0` with save_each_rank = use_ep: under EP every TP rank emits its (TP-broadcast, identical) tokens",
			Config:  gateExample(func(c *serving.Config) { c.Gate = serving.GateOld }),
			Fixed:   fixedServing,
			Expect: Expect{Signature: SigServing, Classes: []serving.Class{serving.ClassDuplicated},
				Shows: "every request's tokens duplicated ×tp in its DP group's queue (gate table: A,B,A,B | C,D,C,D)"},
			Examples: []string{"gate-table"},
		},
		{
			Name:    "serving.gate-global-rank",
			Source:  "FastDeploy #7172 review (the new gate fed a global rank id)",
			Class:   C5,
			Domain:  Serving,
			Summary: "emission gate `rank_id == 0` fed a global rank: only global rank 0 emits, every DP group ≥ 1 is silently dropped",
			Config:  gateExample(func(c *serving.Config) { c.Gate = serving.GateGlobalRank }),
			Fixed:   fixedServing,
			Expect: Expect{Signature: SigServing, Classes: []serving.Class{serving.ClassLost},
				Shows: "DP group 1's requests never reach its queue (gate table: C,D lost)"},
			Examples: []string{"gate-table"},
		},
		{
			Name:    "serving.gate-state-updates",
			Source:  "FastDeploy #7172 review (\"不能提前return\": gate only the emission)",
			Class:   C5,
			Domain:  Serving,
			Summary: "the gate's early return also skips the state updates every replica must run, so non-emitting ranks fall out of lockstep",
			Config:  gateExample(func(c *serving.Config) { c.GateStateUpdates = true }),
			Fixed:   fixedServing,
			Expect: Expect{Signature: SigServing, Classes: []serving.Class{serving.ClassReplica, serving.ClassGatedUpdate},
				Shows: "TP ranks other than 0 skip their state update and diverge from their root"},
		},
		{
			Name:    "serving.predict-current-step",
			Source:  "FastDeploy fastdeploy/worker/gpu_model_runner.py _predict_next_launch_token_num before #7172",
			Class:   C6,
			Domain:  Serving,
			Summary: "the overlapped runner predicts the next launch's token count from the current step's seq_lens_this_time",
			Config: func() serving.Config {
				c := serving.PredictionExample()
				c.Predict = serving.PredictCurrentStep
				return c
			},
			Fixed: fixedServing,
			Expect: Expect{Signature: SigServing, Classes: []serving.Class{serving.ClassUnder},
				Shows: "step 2 of DP0 predicted 14 tokens, launched 16: pre_process drops 2"},
			Examples: []string{"launch-prediction"},
		},
	}
}
