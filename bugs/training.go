package bugs

import (
	"errors"
	"fmt"
	"github.com/spcheck/spcheck/model"
	"slices"
	"strings"

	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/verify"
)

// requires joins the conditions a plan must meet for a bug to show.
func requires(conds ...cond) func(p plan.Plan) error {
	return func(p plan.Plan) error {
		var missing []string
		for _, c := range conds {
			if !c.ok(p) {
				missing = append(missing, c.what)
			}
		}
		if len(missing) == 0 {
			return nil
		}
		return errors.New("needs " + strings.Join(missing, ", "))
	}
}

type cond struct {
	what string
	ok   func(p plan.Plan) bool
}

var (
	needTP      = cond{"tp > 1", func(p plan.Plan) bool { return p.TP > 1 }}
	needPP      = cond{"pp > 1", func(p plan.Plan) bool { return p.PP > 1 }}
	needSP      = cond{"sp = megatron or vllm", func(p plan.Plan) bool { return p.SP != plan.SPOff }}
	needVLLM    = cond{"sp = vllm", func(p plan.Plan) bool { return p.SP == plan.SPVLLM }}
	needPartial = cond{"partial_p2p = true", func(p plan.Plan) bool { return p.PartialP2P }}
	needMTP     = cond{"mtp > 0", func(p plan.Plan) bool { return p.MTP > 0 }}
	needMB      = cond{"microbatches > 1", func(p plan.Plan) bool { return p.Microbatches > 1 }}
	// A rank's bf16 accumulator shows beside its peers' fp32 ones only in a low-precision run,
	// and only once the tokens it sums are many: its error grows with their count while the
	// upstream noise every rank shares does not.
	needLowPrecision  = cond{"dtype = bf16 or fp16", func(p plan.Plan) bool { return p.DType == tensor.BF16 || p.DType == tensor.F16 }}
	needLongReduction = cond{fmt.Sprintf("batch × seq ≥ %d (tokens summed by a weight gradient)", MinAccumulatedTokens),
		func(p plan.Plan) bool { return p.Batch*p.Seq/p.DP >= MinAccumulatedTokens }}
	// A full residual is sliced only after an unsharded first norm: at a later stage's start
	// or at an MTP depth's input.
	needSlice = cond{"pp > 1 or mtp > 0", func(p plan.Plan) bool { return p.PP > 1 || p.MTP > 0 }}
	// The last stage holds an embedding copy only for a tied head or MTP.
	needEmbCopy = cond{"tied = true or mtp > 0", func(p plan.Plan) bool { return p.Tied || p.MTP > 0 }}
	needCoef    = cond{"mtp_lambda ≠ mtp (λ/D ≠ 1)", func(p plan.Plan) bool { return p.MTPLambda != float64(p.MTP) }}
	// An ignored label (−100) with loss mask 1 at some MTP depth: the bug counts it.
	needIgnoredLabel = cond{"an ignored (−100) MTP label with loss mask 1", func(p plan.Plan) bool {
		in := model.MakeInputs(p.Model)
		for k := 1; k <= p.MTP; k++ {
			lab := nn.RollSequences(in.Labels, in.CuSeqlens, k, 0)
			mask := nn.RollSequences(in.LossMask, in.CuSeqlens, k, 0)
			for i, v := range lab.Data {
				if v == nn.IgnoreIndex && mask.Data[i] != 0 {
					return true
				}
			}
		}
		return false
	}}
	// Some MTP id next to a TP shard boundary is not already the roll's fill.
	needBoundaryID = cond{"an MTP id other than 0 at the end of a TP shard", func(p plan.Plan) bool {
		if p.TP < 2 || p.SP == plan.SPOff {
			return false
		}
		in := model.MakeInputs(p.Model)
		block := (p.Seq + p.TP - 1) / p.TP
		for k := 1; k <= p.MTP; k++ {
			ids := nn.RollSequences(in.IDs, in.CuSeqlens, k, 0)
			if !slices.Equal(ids.Data, RollAfterScatter(ids, k, block).Data) {
				return true
			}
		}
		return false
	}}
	// Some MTP token carries a loss weight, so gradients flow through the MTP path (a
	// sequence longer than depth + 1, a label that is not −100, loss mask 1).
	needMTPTarget = cond{"an MTP token with a loss weight", func(p plan.Plan) bool {
		for _, w := range mtpWeights(p) {
			if slices.ContainsFunc(w, func(x float64) bool { return x != 0 }) {
				return true
			}
		}
		return false
	}}
	// The fused kernel's position differs from the forward's at some token at or before a
	// weighted MTP token of the same sequence (a packed sequence longer than the first).
	needFusedDiff = cond{"a weighted MTP token after a position where the fused RoPE kernel differs", func(p plan.Plan) bool {
		cu := p.CuSeqlens()
		pos := nn.Positions(1, cu)
		fused := FusedPositions(pos, cu)
		ends := nn.SeqEnds(cu)
		for _, w := range mtpWeights(p) {
			for j, x := range w {
				i := j % p.Seq
				if x == 0 {
					continue
				}
				for o := i - pos[i]; o <= i && o < ends[i]; o++ {
					if fused[o] != pos[o] {
						return true
					}
				}
			}
		}
		return false
	}}
)

// mtpWeights are each MTP depth's per-token loss weights (mask·[label ≠ −100] after the depth's
// per-sequence roll; unnormalised), flattened [B·S].
func mtpWeights(p plan.Plan) [][]float64 {
	in := model.MakeInputs(p.Model)
	var out [][]float64
	for k := 1; k <= p.MTP; k++ {
		lab := nn.RollSequences(in.Labels, in.CuSeqlens, k, 0)
		mask := nn.RollSequences(in.LossMask, in.CuSeqlens, k, 0)
		labels := make([]int, len(lab.Data))
		for i, v := range lab.Data {
			labels[i] = int(v)
		}
		out = append(out, nn.LossWeights(labels, mask.Data))
	}
	return out
}

func trainingBugs() []*Bug {
	return []*Bug{
		{
			Name:     "partial-p2p-under-sp",
			Source:   "PaddleFleet#589 (Paddle p2p_communication.py enable_partial_send_recv, default on; PaddleFleet#590 turns it off under SP)",
			Class:    C1,
			Domain:   Training,
			Summary:  "partial send/recv left on under sequence parallelism: each TP rank sends flat chunk tp_rank of its own sequence shard, every receiver all-gathers the same frankentensor (forward and backward)",
			Plan:     "tp=2,pp=2,sp=megatron,partial_p2p=true,mtp=0",
			Programs: partialP2P(true, true),
			Applies:  requires(needTP, needPP, needSP, needPartial),
			Expect: Expect{Verdict: string(verify.Diverged), First: "act/layers.1.attn_norm", Signature: SigIdenticalReceivers,
				Shows: "every receiver of a stage boundary holds the same tensor (chunk q from TP rank q); each rank's other chunks are lost"},
			Examples: []string{"seed001-develop", "seed001-unify"},
		},
		{
			Name:     "vllm-residual-send-allgather",
			Source:   "vLLM #24021 (GroupCoordinator.send_tensor_dict all_gather_group for the SP residual)",
			Class:    C1,
			Domain:   Training,
			Summary:  "PP+SP: the scattered residual is sent to the next stage by slice + all-gather like the replicated hidden states, so every receiver rebuilds the same mixed residual",
			Plan:     "tp=2,pp=2,sp=vllm,partial_p2p=true,mtp=0",
			Programs: partialP2P(true, false),
			Applies:  requires(needTP, needPP, needVLLM, needPartial),
			Expect: Expect{Verdict: string(verify.Diverged), First: "act/layers.0.output", Signature: SigDiverged,
				Shows: "the next stage's residual is wrong on every TP rank alike (rows of other shards lost)"},
			Examples: []string{"vllm24021"},
		},
		{
			Name:     "vllm-residual-slice-offset0",
			Source:   "vLLM #33322 (sequence_parallelism.py MiddleAllReduceRMSNormPattern residual[0:L])",
			Class:    C2,
			Domain:   Training,
			Summary:  "SP rewrite cuts the full residual at offset 0 on every TP rank instead of rank·L: rank 0 right, every other rank adds rank 0's rows",
			Plan:     "tp=2,pp=2,sp=vllm,mtp=0",
			Programs: residualSliceAtZero,
			Applies:  requires(needTP, needVLLM, needSlice),
			Expect: Expect{Verdict: string(verify.Diverged), First: "act/layers.1.attn_residual", Signature: SigTP0Right,
				Shows: "TP rank 0's rows of the residual right, every other rank's wrong, from the first fused add after an unsharded norm"},
			Examples: []string{"vllm33322"},
		},
		{
			Name:     "vllm-pp-residual-not-gathered",
			Source:   "vLLM #33322 (gpu_model_runner.py sync_and_slice_intermediate_tensors), issue #27894",
			Class:    C2,
			Domain:   Training,
			Summary:  "PP+SP receiver keeps its peer's residual shard [L,H] instead of all-gathering it, but the stage's first norm runs unsharded on [N,H]",
			Plan:     "tp=2,pp=2,sp=vllm,mtp=0",
			Programs: residualKeptScattered,
			Applies:  requires(needTP, needPP, needVLLM),
			Expect: Expect{Verdict: VerdictError, First: "act/layers.0.output", Feeds: "act/layers.1.attn_norm", Signature: SigRunError,
				Shows: "a shape error in the fused add of the next stage's first norm, naming rank, op and tensors"},
		},
		{
			Name:     "sp-norm-grad-not-reduced",
			Source:   "Megatron #1446, PaddleFleet #1146/#1154/#1162, PaddleFleetX #671",
			Class:    C3,
			Domain:   Training,
			Summary:  "SP: the replicated norm weights' gradients (partial: each rank saw its own rows) are never all-reduced over TP",
			Plan:     "tp=2,sp=megatron,mtp=0",
			Programs: allReduceDropped(simulate.RoleGradTPSum),
			Applies:  requires(needTP, needSP),
			Expect: Expect{Verdict: string(verify.ReplicaMismatch), First: "grad/final_norm.weight", Signature: SigReplicaMismatch,
				Shows: "the norm grads' TP copies disagree: each rank holds its partial sum, which add up to the reference"},
			Examples: []string{"norm-grad"},
		},
		{
			Name:     "sp-norm-grad-avg",
			Source:   "Megatron-LM megatron/core/distributed/finalize_model_grads.py (SUM vs average_gradients_across_tp_domain)",
			Class:    C3,
			Domain:   Training,
			Summary:  "SP: the norm weights' partial gradients are AVG- instead of SUM-reduced over TP",
			Plan:     "tp=2,sp=megatron,mtp=0",
			Programs: allReduceAveraged(simulate.RoleGradTPSum),
			Applies:  requires(needTP, needSP),
			Expect: Expect{Verdict: string(verify.Diverged), First: "grad/final_norm.weight", Signature: SigScaled,
				Scaled: []ScaledTensor{{"grad/final_norm.weight", 0.5, "1/tp"}, {"grad/layers.0.attn_norm.weight", 0.5, "1/tp"}},
				Shows:  "the norm grads are ×1/tp their reference"},
			Examples: []string{"norm-grad"},
		},
		{
			Name:     "mtp-eh-proj-reduce-scatter",
			Source:   "Megatron !3594 (06e9f28b30): all_gather_last_dim_from_tensor_parallel_region → gather_from_tensor_model_parallel_region",
			Class:    C3,
			Domain:   Training,
			Summary:  "MTP eh_proj output gathered with a collective whose adjoint reduce-scatters a gradient that is already replicated: grads ×tp upstream of the projection",
			Plan:     "tp=2,mtp=1",
			Programs: ehProjReduceScatter,
			Applies:  requires(needTP, needMTP, needMTPTarget),
			Expect: Expect{Verdict: string(verify.Diverged), First: "grad/mtp.1.eh_proj.weight", Signature: SigScaled,
				Scaled: []ScaledTensor{{"grad/mtp.1.eh_proj.weight", 2, "tp"}},
				Shows:  "eh_proj's weight grad (and everything upstream through the MTP path) ×tp"},
			Examples: []string{"eh-proj"},
		},
		{
			Name:     "mtp-cu-seqlens-shifted",
			Source:   "ms-swift #6496 intermediate revision (author's cu_seqlens)",
			Class:    C4,
			Domain:   Training,
			Summary:  "MTP layer attention gets concat([0], cu[1:]−1, cu[-1:]): each cross-boundary position moves to the start of the next sequence, where its valid positions attend to it",
			Plan:     "mtp=1,packed=4:3:5",
			Programs: mtpCuSeqlens(AuthorCuSeqlens),
			Applies:  requires(needMTP),
			Expect: Expect{Verdict: string(verify.Diverged), First: "act/mtp.1.layer.attn.context", Signature: SigPositions,
				Positions: []int{4, 7, 8, 9}, ValidDepth: 1,
				Shows: "wrong MTP outputs at valid depth-1 positions 4, 7, 8, 9 (every sequence but the first)"},
		},
		{
			Name:     "mtp-cu-seqlens-compacted",
			Source:   "ms-swift #6496 review (gemini-code-assist: cu − arange)",
			Class:    C4,
			Domain:   Training,
			Summary:  "MTP layer attention gets cu − arange(len(cu)), the cu_seqlens of a compacted tensor Megatron never builds: segments misaligned, the tail outside every segment",
			Plan:     "mtp=1,packed=4:3:5",
			Programs: mtpCuSeqlens(ReviewerCuSeqlens),
			Applies:  requires(needMTP),
			Expect: Expect{Verdict: string(verify.Diverged), First: "act/mtp.1.layer.attn.context", Signature: SigPositions,
				Positions: []int{4, 7, 8, 9}, ValidDepth: 1,
				Shows: "wrong MTP outputs at valid depth-1 positions 4, 7, 8, 9; positions 9–11 unprocessed"},
		},
		{
			Name:     "mtp-loss-counts-ignore-index",
			Source:   "ms-swift #6496 as merged, fixed by #8194 (f57b75488)",
			Class:    C4,
			Domain:   Training,
			Summary:  "MTP loss mask not cleared where the label is −100: native vocab-parallel CE adds those tokens' logsumexp and the token count includes them",
			Plan:     "mtp=1",
			Programs: mtpIgnoreIndexWeights,
			Applies:  requires(needMTP, needIgnoredLabel),
			Expect: Expect{Verdict: string(verify.Diverged), First: "loss/mtp.1", Signature: SigDiverged,
				Shows: "the MTP loss differs: logsumexp terms at the ignored positions, a diluted normalisation"},
		},
		{
			Name:     "mtp-ids-rolled-after-sp-scatter",
			Source:   "mbridge #138 (Qwen3.5 sp_input_ids: scatter_to_sequence_parallel_region before roll_tensor)",
			Class:    C4,
			Domain:   Training,
			Summary:  "MTP input ids scattered over TP before the roll: each shard wraps within itself, the next-token ids at TP shard boundaries become the roll's fill",
			Plan:     "tp=2,sp=megatron,mtp=1",
			Programs: mtpIdsRolledAfterScatter,
			Applies:  requires(needTP, needSP, needMTP, needBoundaryID),
			Expect: Expect{Verdict: string(verify.Diverged), First: "input/mtp.1.ids", Signature: SigPositions, Positions: []int{3},
				Shows: "wrong next-token ids at the last position of every TP shard but the last"},
		},
		{
			Name:    "mtp-loss-no-lambda-over-d",
			Source:  "Megatron-LM multi_token_prediction.py MTPLossAutoScaler / process_mtp_loss (mtp_loss_scale = λ/D)",
			Class:   C4,
			Domain:  Training,
			Summary: "the MTP losses' gradient is injected without the λ/D weight",
			Plan:    "mtp=2,mtp_lambda=0.5",
			Programs: mtpLossGradScale(func(c *simulate.Compiled, s float64) float64 {
				if k := mtpCoef(c); k != 0 {
					return s / k
				}
				return 1
			}),
			Applies: requires(needMTP, needCoef, needMTPTarget),
			Expect: Expect{Verdict: string(verify.Diverged), First: "agrad/mtp.2.logits", Signature: SigScaled,
				Scaled: []ScaledTensor{{"agrad/mtp.2.logits", 4, "D/λ"}},
				Shows:  "MTP-path grads ×D/λ (the missing λ/D), the reported loss unchanged"},
		},
		{
			Name:    "mtp-loss-not-per-microbatch",
			Source:  "Megatron-LM pipeline_parallel/schedules.py main_loss_backward_scale = loss_scale / num_microbatches",
			Class:   C4,
			Domain:  Training,
			Summary: "the MTP loss gradient is not divided by the number of micro-batches like the main loss's",
			Plan:    "mtp=1,microbatches=2",
			Programs: mtpLossGradScale(func(c *simulate.Compiled, s float64) float64 {
				return s * float64(c.Plan.Microbatches)
			}),
			Applies: requires(needMTP, needMB, needMTPTarget),
			Expect: Expect{Verdict: string(verify.Diverged), First: "agrad/mtp.1.logits", Signature: SigScaled,
				Scaled: []ScaledTensor{{"agrad/mtp.1.logits", 2, "microbatches"}},
				Shows:  "MTP-path grads ×microbatches"},
		},
		{
			Name:     "embedding-grad-not-reduced-across-pp",
			Source:   "Megatron embedding group (first/last stage copies of a shared embedding under PP with MTP or a tied head)",
			Class:    C3,
			Domain:   Training,
			Summary:  "the first and last stage's copies of the shared embedding keep their own gradients: no all-reduce over the embedding group",
			Plan:     "pp=2,mtp=1",
			Programs: allReduceDropped(simulate.RoleGradEmbeddingSum),
			Applies:  requires(needPP, needEmbCopy),
			Expect: Expect{Verdict: string(verify.ReplicaMismatch), First: "grad/embedding.weight", Signature: SigReplicaMismatch,
				Shows: "the first and last stage's embedding grads disagree"},
		},
		{
			Name:     "recompute-config-toggled",
			Source:   "ms-swift #6496 intermediate revision (apply_rope_fusion toggled on the shared config around the checkpointed MTP layer)",
			Class:    C7,
			Domain:   Training,
			Summary:  "the MTP layer is recomputed in the backward under the config restored after the forward: the fused RoPE kernel indexes positions by in-sequence offset",
			Plan:     "mtp=1,packed=2:3:5",
			Programs: recomputeConfigToggled,
			Applies:  requires(needMTP, needMTPTarget, needFusedDiff),
			Expect: Expect{Verdict: string(verify.Diverged), First: "grad/mtp.1.layer.mlp.down.weight", Signature: SigRecompute,
				Recomputed: []string{"act/mtp.1.layer.attn.q_rope", "act/mtp.1.layer.attn.k_rope"},
				Shows:      "the loss agrees; recomputed q/k RoPE (and all that follows) differ from the forward; grads diverge"},
			Examples: []string{"recompute-positions"},
		},
		{
			Name:     "tp-rank-bf16-grad-accumulation",
			Source:   "spcheck issue 13 (one TP rank's weight-gradient GEMM keeps a bf16 accumulator, e.g. a compute type or kernel chosen per rank or per shape, where its peers accumulate in fp32 as cuBLAS CUBLAS_COMPUTE_32F does)",
			Class:    C8,
			Domain:   Training,
			Summary:  "TP rank 1 accumulates its weight-gradient GEMMs in the stored bf16, rounding the running sum after every token; its peers accumulate in fp32",
			Plan:     "tp=2,dtype=bf16,hidden=32,heads=2,ffn=64,seq=512,batch=4,layers=1,mtp=0",
			Programs: rankAccumulatesStored(1),
			Applies:  requires(needTP, needLowPrecision, needLongReduction),
			Expect: Expect{Verdict: string(verify.Diverged), First: "grad/lm_head.weight", Signature: SigTP0Right,
				Shows: "the LM head's weight gradient is wrong on rank 1 only (right on TP rank 0), and verify's per-rank precision bias names rank 1's weight gradients"},
		},
	}
}

// String is the bug's one-line catalogue entry.
func (b *Bug) String() string {
	return fmt.Sprintf("%-38s %s %s", b.Name, b.Class, b.Summary)
}
