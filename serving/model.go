package serving

import (
	"fmt"

	"github.com/spcheck/spcheck/tensor"
)

// Emits is the emission gate: whether the rank with TP rank tpRank in DP group dp sends its
// outputs to its DP group's queue. It mirrors the C++ early return
// `if (!save_each_rank && rank_id > 0) return;` (old) / `if (rank_id > 0) return;` (new), with
// the rank_id each variant passes.
func (g Gate) Emits(useEP bool, tp, dp, tpRank int) bool {
	switch g {
	case GateOld:
		saveEachRank := useEP // gpu_model_runner passes save_each_rank = parallel_config.use_ep
		return saveEachRank || tpRank == 0
	case GateNew:
		return tpRank == 0
	case GateGlobalRank:
		return dp*tp+tpRank == 0
	}
	panic(&Error{"gate", fmt.Sprintf("unknown gate %q", g)})
}

// Label is the gate's row label in the gate table (GateTable) for a deployment.
func (g Gate) Label(useEP bool, dp int) string {
	switch g {
	case GateOld:
		if !useEP && dp == 1 {
			return "old, use_ep=False (pure TP, DP=1)"
		}
		return fmt.Sprintf("old, use_ep=%s", pyBool(useEP))
	case GateNew:
		return "new (rank_id = tp_rank)"
	case GateGlobalRank:
		return "hypothetical (rank_id = global rank)"
	}
	return string(g)
}

func pyBool(b bool) string {
	if b {
		return "True"
	}
	return "False"
}

// PredictNextLaunch is the overlapped schedule's guess, made while step n runs, of the token
// count step n+1 will launch, from step n's seq_lens_this_time and is_block_step (one entry per
// batch slot). k is num_speculative_tokens.
func (p Prediction) PredictNextLaunch(k int, seqLensThisTime, isBlockStep []int) int {
	if len(seqLensThisTime) != len(isBlockStep) {
		panic(&Error{"predict", fmt.Sprintf("seq_lens_this_time has %d slots, is_block_step %d",
			len(seqLensThisTime), len(isBlockStep))})
	}
	perRequest := k + 1 // token_num_one_step
	switch p {
	case PredictCurrentStep:
		n := 0
		for i := range seqLensThisTime {
			n += seqLensThisTime[i] + isBlockStep[i]*perRequest
		}
		return n
	case PredictNextRealBsz:
		realBsz := 0
		for i := range seqLensThisTime {
			if seqLensThisTime[i] > 0 {
				realBsz++
			}
			if isBlockStep[i] > 0 {
				realBsz++
			}
		}
		return realBsz * perRequest
	}
	panic(&Error{"predict", fmt.Sprintf("unknown prediction %q", p)})
}

// The token model. The "target model" is a counter RNG over (position, previous token): its
// greedy token at position pos of request id, given the token before it, is a function of
// (seed, id, pos, prev) alone — a Markov chain, so a token accepted after a wrong draft is wrong.
// The MTP drafter guesses the target's token right with probability AcceptRate, decided by a
// second counter RNG at the position, so acceptance is deterministic too.

// PromptToken is the last prompt token of request id: the "previous token" of position 0.
func PromptToken(seed uint64, vocab int, id string) int {
	return tensor.NewRNG(seed, "serving/prompt/"+id).Intn(0, vocab)
}

// TargetToken is the target model's greedy token at position pos of request id after token prev.
func TargetToken(seed uint64, vocab int, id string, pos, prev int) int {
	return tensor.NewRNG(seed, "serving/target/"+id).Intn(uint64(pos)*uint64(vocab)+uint64(prev), vocab)
}

// DraftToken is the MTP drafter's guess for position pos of request id after token prev: the
// target's token with probability acceptRate, otherwise the next token id (so a wrong draft is
// never right by luck).
func DraftToken(seed uint64, vocab int, acceptRate float64, id string, pos, prev int) int {
	t := TargetToken(seed, vocab, id, pos, prev)
	if tensor.NewRNG(seed, "serving/draft/"+id).Uniform(uint64(pos)) < acceptRate {
		return t
	}
	return (t + 1) % vocab
}

// GreedyTokens is the oracle: single-device greedy decoding of request id for n tokens, one
// token per step, no drafts.
func GreedyTokens(seed uint64, vocab int, id string, n int) []int {
	out := make([]int, n)
	prev := PromptToken(seed, vocab, id)
	for pos := range out {
		out[pos] = TargetToken(seed, vocab, id, pos, prev)
		prev = out[pos]
	}
	return out
}

// Verify is one request's speculative step on one rank. It launches launch tokens: last (the
// token before position pos) and launch-1 drafts chained from it for positions pos …
// pos+launch-2. The target reads each input and predicts the next position; the drafts are
// accepted while each equals the target's prediction before it, and the target's predictions up
// to the first rejected draft (the bonus token when all pass) are the accepted tokens, capped so
// the request never exceeds maxTokens. A correct loop therefore reproduces GreedyTokens exactly.
func (c Config) Verify(id string, pos, last, launch, maxTokens int) []int {
	input := make([]int, launch)
	input[0] = last
	for j := 1; j < launch; j++ {
		input[j] = DraftToken(c.Seed, c.Vocab, c.AcceptRate, id, pos+j-1, input[j-1])
	}
	out := make([]int, launch)
	for i, x := range input {
		out[i] = TargetToken(c.Seed, c.Vocab, id, pos+i, x)
	}
	accepted := 1
	for j := 1; j < launch && input[j] == out[j-1]; j++ {
		accepted++
	}
	return out[:max(min(accepted, maxTokens-pos), 0)]
}
