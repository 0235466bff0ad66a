package bugs

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/ir"
	simrt "github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/tensor"
)

// The rewrites that inject the training bugs. Each works on the compiled programs the way the
// framework bug changed the framework's communication or arithmetic: it selects ops by their
// Role (simulate.Role*), so the same rewrite applies to the simulator, to the GPUs (which run
// the same programs) and to the tiny worked examples.

// rewriteOps replaces, in every program, each op f selects with what f returns, then places the
// frees anew (new symbols need theirs, replaced reads may move a last use).
func rewriteOps(c *simulate.Compiled, f func(prog *ir.Program, o ir.Op) ([]ir.Op, bool)) {
	for _, prog := range c.Programs {
		rewriteProgram(prog, func(o ir.Op) ([]ir.Op, bool) { return f(prog, o) })
	}
}

// rewriteProgram is ir.Rewrite followed, when anything changed, by fresh frees.
func rewriteProgram(prog *ir.Program, f func(o ir.Op) ([]ir.Op, bool)) {
	changed := false
	ir.Rewrite(prog, func(o ir.Op) ([]ir.Op, bool) {
		repl, ok := f(o)
		changed = changed || ok
		return repl, ok
	})
	if changed {
		ir.StripFrees(prog)
		ir.InsertFrees(prog)
	}
}

// withInts returns o with integer attribute k set to v (the attribute map copied, so the
// original op is untouched).
func withInts(o ir.Op, k string, v []int) ir.Op {
	o.Attr.Ints = maps.Clone(o.Attr.Ints)
	if o.Attr.Ints == nil {
		o.Attr.Ints = map[string][]int{}
	}
	o.Attr.Ints[k] = v
	return o
}

// withFloat returns o with float attribute k set to v.
func withFloat(o ir.Op, k string, v float64) ir.Op {
	o.Attr.Floats = maps.Clone(o.Attr.Floats)
	if o.Attr.Floats == nil {
		o.Attr.Floats = map[string]float64{}
	}
	o.Attr.Floats[k] = v
	return o
}

// partialP2P is Paddle's enable_partial_send_recv (Megatron's scatter_gather_tensors_in_pipeline,
// vLLM's send_tensor_dict(all_gather_group=…)) without its replication guard: every pipeline
// hand-off tensor that is still sent whole goes as flat chunk tp_rank of the tensor
// (flat_chunk + send), and the receiver all-gathers the chunks over its TP group
// (all_gather_flat) — whether or not the tensor is the same on every TP rank. Tensors whose size
// tp does not divide keep the full send (Paddle's fallback). forward/backward pick the
// directions (activations to the next stage, gradients to the previous one). It acts only when
// the plan asks for partial P2P (partial_p2p=true): the bug is the missing guard, not the flag.
func partialP2P(forward, backward bool) func(c *simulate.Compiled) error {
	return func(c *simulate.Compiled) error {
		if !c.Plan.PartialP2P {
			return nil
		}
		for _, prog := range c.Programs {
			g := simulate.TPGroupOf(prog)
			n, idx := len(g.Ranks), g.Index(prog.Rank)
			if n < 2 {
				continue
			}
			partial := map[string]bool{} // symbols already sent or received by partial P2P
			for _, o := range prog.Ops {
				switch o.Role {
				case simulate.RolePartialChunk:
					partial[o.Out[0]] = true
				case simulate.RolePartialGather:
					partial[o.In[0]] = true
				}
			}
			rewriteProgram(prog, func(o ir.Op) ([]ir.Op, bool) {
				if o.Op != ir.OpP2P {
					return nil, false
				}
				var pre, post []ir.Op
				o.P2P = slices.Clone(o.P2P)
				for k, t := range o.P2P {
					fwd := t.Send == (t.Peer > prog.Rank) // the next stage has the higher ranks
					numel := tensor.Numel(t.Shape)
					if (fwd && !forward) || (!fwd && !backward) || partial[t.Sym] || numel == 0 || numel%n != 0 {
						continue
					}
					chunk := t.Sym + "~chunk"
					if t.Send {
						pre = append(pre, ir.Op{Op: ir.OpFlatChunk, In: []string{t.Sym}, Out: []string{chunk},
							Attr: ir.Ints("parts", n, "index", idx), Role: simulate.RolePartialChunk})
					} else {
						post = append(post, ir.Op{Op: ir.OpAllGatherFlat, In: []string{chunk}, Out: []string{t.Sym},
							Attr: ir.Ints("shape", slices.Clone(t.Shape)), Group: g, Role: simulate.RolePartialGather})
					}
					o.P2P[k].Sym, o.P2P[k].Shape = chunk, []int{numel / n}
				}
				if len(pre)+len(post) == 0 {
					return nil, false
				}
				return slices.Concat(pre, []ir.Op{o}, post), true
			})
		}
		return nil
	}
}

// residualSliceAtZero is vLLM's pre-#33322 MiddleAllReduceRMSNorm replacement: the full residual
// is cut to rows [0, L) on every TP rank instead of [rank·L, (rank+1)·L).
func residualSliceAtZero(c *simulate.Compiled) error {
	rewriteOps(c, func(_ *ir.Program, o ir.Op) ([]ir.Op, bool) {
		if o.Role != simulate.RoleResidualSlice {
			return nil, false
		}
		return []ir.Op{withInts(o, "start", []int{0})}, true
	})
	return nil
}

// residualKeptScattered is vLLM's pre-#33322 sync_and_slice_intermediate_tensors: the receiving
// stage keeps its peer's residual shard [L, H] where the stage's first (unsharded) norm needs
// the gathered [N, H].
func residualKeptScattered(c *simulate.Compiled) error {
	rewriteOps(c, func(_ *ir.Program, o ir.Op) ([]ir.Op, bool) {
		if o.Role != simulate.RoleResidualGather {
			return nil, false
		}
		return []ir.Op{{Op: ir.OpCopy, In: o.In, Out: o.Out, Role: o.Role + ".skipped"}}, true
	})
	return nil
}

// allReduceDropped removes the all-reduce with role: each rank keeps its own partial (a
// parameter never marked sequence-parallel, so no hook reduces its gradient).
func allReduceDropped(role string) func(c *simulate.Compiled) error {
	return func(c *simulate.Compiled) error {
		rewriteOps(c, func(_ *ir.Program, o ir.Op) ([]ir.Op, bool) {
			if o.Op != ir.OpAllReduce || o.Role != role {
				return nil, false
			}
			return []ir.Op{{Op: ir.OpCopy, In: o.In, Out: o.Out, Role: role + ".dropped"}}, true
		})
		return nil
	}
}

// allReduceAveraged turns the SUM all-reduce with role into an AVG (sum, then ×1/n): Megatron's
// average_gradients_across_tp_domain applied where a SUM is needed.
func allReduceAveraged(role string) func(c *simulate.Compiled) error {
	return func(c *simulate.Compiled) error {
		rewriteOps(c, func(_ *ir.Program, o ir.Op) ([]ir.Op, bool) {
			if o.Op != ir.OpAllReduce || o.Role != role {
				return nil, false
			}
			sum := o
			sum.Out = []string{o.Out[0] + "~sum"}
			avg := ir.Op{Op: ir.OpScale, In: sum.Out, Out: o.Out, Role: role + ".avg",
				Attr: ir.Attrs{Floats: map[string]float64{"c": 1 / float64(len(o.Group.Ranks))}}}
			return []ir.Op{sum, avg}, true
		})
		return nil
	}
}

// ehProjReduceScatter gives the MTP eh_proj gather Megatron's pre-!3594 adjoint:
// all_gather_last_dim_from_tensor_parallel_region, whose backward reduce-scatters the last dim,
// where gather_from_tensor_model_parallel_region's splits it. The incoming gradient is the same
// on every TP rank, so each rank gets tp × its slice.
func ehProjReduceScatter(c *simulate.Compiled) error {
	rewriteOps(c, func(prog *ir.Program, o ir.Op) ([]ir.Op, bool) {
		if o.Role != simulate.RoleEHProjGather+".bwd" || o.Op != ir.OpNarrow {
			return nil, false
		}
		return []ir.Op{{Op: ir.OpReduceScatter, In: o.In, Out: o.Out, Attr: ir.Ints("dim", o.Attr.Int("dim")),
			Group: simulate.TPGroupOf(prog), Role: o.Role}}, true
	})
	return nil
}

// mtpCuSeqlens passes the MTP layers' attention the cu_seqlens f makes of the packed ones
// (seed 003's intermediate ms-swift code and its review).
func mtpCuSeqlens(f func(cu []int) []int) func(c *simulate.Compiled) error {
	return func(c *simulate.Compiled) error {
		rewriteOps(c, func(_ *ir.Program, o ir.Op) ([]ir.Op, bool) {
			if o.Role != simulate.RoleMTPAttention {
				return nil, false
			}
			return []ir.Op{withInts(o, "cu", f(o.Attr.IntList("cu")))}, true
		})
		return nil
	}
}

// AuthorCuSeqlens is the seed-003 author's formula concat([0], cu[1:]−1, cu[-1:]).
func AuthorCuSeqlens(cu []int) []int {
	out := []int{0}
	for _, c := range cu[1:] {
		out = append(out, c-1)
	}
	return append(out, cu[len(cu)-1])
}

// ReviewerCuSeqlens is the seed-003 reviewer's formula cu − arange(len(cu)).
func ReviewerCuSeqlens(cu []int) []int {
	out := make([]int, len(cu))
	for i, c := range cu {
		out[i] = c - i
	}
	return out
}

// mtpIgnoreIndexWeights is merged ms-swift #6496 before #8194: the MTP loss mask is not
// cleared where the label is −100, so (with Megatron's native vocab-parallel cross-entropy,
// which treats −100 as "in no rank's vocab block" and takes the target logit as 0) every
// ignored label contributes its logsumexp, and the token count that normalises the loss counts
// it. Each depth's loss weights become mask / Σ mask over the whole batch (were mask·[label ≠
// −100] / Σ mask·[label ≠ −100]); the labels, and so the kernels, are unchanged.
func mtpIgnoreIndexWeights(c *simulate.Compiled) error {
	total := map[int]float64{} // depth → Σ mask over the global batch
	for _, prog := range c.Programs {
		if prog.Coord[simulate.AxisTP] != 0 { // every micro-batch once: its TP rank 0
			continue
		}
		for _, sym := range prog.Inputs {
			var k, m int
			if n, _ := fmt.Sscanf(strings.Replace(sym, "@mb", " ", 1), "input/mtp.%d.loss_mask %d", &k, &m); n == 2 {
				for _, v := range c.Init[prog.Rank][sym].Data {
					total[k] += v
				}
			}
		}
	}
	for r, prog := range c.Programs {
		for _, sym := range prog.Inputs {
			var k, m int
			if n, _ := fmt.Sscanf(strings.Replace(sym, "@mb", " ", 1), "weights/mtp.%d %d", &k, &m); n != 2 {
				continue
			}
			mask := c.Init[r][fmt.Sprintf("input/mtp.%d.loss_mask@mb%d", k, m)]
			if mask == nil {
				return fmt.Errorf("rank %d has %s but no loss mask for it", r, sym)
			}
			w := mask.Clone()
			for i := range w.Data {
				w.Data[i] /= max(total[k], 1)
			}
			c.Init[r][sym] = w
		}
	}
	return nil
}

// RollAfterScatter is mbridge #138's sp_input_ids: ids are scattered over TP (rank t holds
// positions [t·L, (t+1)·L) of the padded sequence) before Megatron's roll_tensor, which only
// exchanges context-parallel boundaries, so each shard wraps within itself and its last k
// positions at depth k get the roll's fill (0) instead of the next shard's first ids. ids is
// depth k's correctly rolled [B, S] ids; block is L.
func RollAfterScatter(ids *tensor.Dense, k, block int) *tensor.Dense {
	out := ids.Clone()
	s := ids.Shape[1]
	for j := range out.Data {
		i := j % s
		if end := (i/block + 1) * block; i+k >= end {
			out.Data[j] = 0
		}
	}
	return out
}

// mtpIdsRolledAfterScatter rewrites every MTP depth's ids as RollAfterScatter makes them (under
// sequence parallelism with tp > 1; otherwise nothing is scattered).
func mtpIdsRolledAfterScatter(c *simulate.Compiled) error {
	p := c.Plan
	if p.SP == "off" || p.TP < 2 {
		return nil
	}
	block := (p.Seq + p.TP - 1) / p.TP
	for r, prog := range c.Programs {
		for _, sym := range prog.Inputs {
			var k, m int
			if n, _ := fmt.Sscanf(strings.Replace(sym, "@mb", " ", 1), "input/mtp.%d.ids %d", &k, &m); n == 2 {
				c.Init[r][sym] = RollAfterScatter(c.Init[r][sym], k, block)
			}
		}
	}
	return nil
}

// mtpLossGradScale sets the scale of every MTP depth's loss gradient to f(scale): the
// backward-only MTP loss weight (Megatron's MTPLossAutoScaler injects the MTP loss gradient
// in the backward; the reported loss is unchanged).
func mtpLossGradScale(f func(c *simulate.Compiled, scale float64) float64) func(c *simulate.Compiled) error {
	return func(c *simulate.Compiled) error {
		rewriteOps(c, func(_ *ir.Program, o ir.Op) ([]ir.Op, bool) {
			if o.Role != simulate.RoleMTPLossGrad {
				return nil, false
			}
			return []ir.Op{withFloat(o, "scale", f(c, o.Attr.Float("scale")))}, true
		})
		return nil
	}
}

// mtpCoef is λ/D, the MTP losses' weight in the objective.
func mtpCoef(c *simulate.Compiled) float64 {
	if c.Plan.MTP == 0 {
		return 0
	}
	return c.Plan.MTPLambda / float64(c.Plan.MTP)
}

// FusedPositions is what the fused THD RoPE kernel reads in the recompute of ms-swift #6496's intermediate revision: the
// per-token position table pos (rows of cu[-1] tokens) indexed by each token's in-sequence offset
// instead of its own index — token j of a sequence starting at s gets pos[row + (j − s)].
func FusedPositions(pos, cu []int) []int {
	s := cu[len(cu)-1]
	ends := nn.SeqEnds(cu)
	lens := map[int]int{}
	for i := 1; i < len(cu); i++ {
		lens[cu[i]] = cu[i] - cu[i-1]
	}
	out := make([]int, len(pos))
	for j := range pos {
		i := j % s
		start := ends[i] - lens[ends[i]]
		out[j] = pos[j/s*s+i-start]
	}
	return out
}

// recomputeConfigToggled is seed 003's intermediate MTP forward: apply_rope_fusion is switched
// off on the shared config around the checkpointed MTP layer and switched back after the
// forward, so the recompute in the backward runs the fused RoPE kernel (FusedPositions) where
// the forward ran the unfused one. The MTP layers are checkpointed (activation recompute), the
// recomputed RoPE and the backward through it use the fused kernel's positions.
func recomputeConfigToggled(c *simulate.Compiled) error {
	cu := c.Plan.CuSeqlens()
	fused := func(o *ir.Op) {
		if o.Role == simulate.RoleMTPRoPE {
			*o = withInts(*o, "pos", FusedPositions(o.Attr.IntList("pos"), cu))
		}
	}
	if _, err := c.Recompute(func(name string) bool { return strings.HasPrefix(name, "mtp.") }, fused); err != nil {
		return err
	}
	rewriteOps(c, func(_ *ir.Program, o ir.Op) ([]ir.Op, bool) {
		if o.Op != ir.OpRoPEGrad || o.Role != simulate.RoleMTPRoPE {
			return nil, false
		}
		fused(&o)
		return []ir.Op{o}, true
	})
	return nil
}

// MinAccumulatedTokens is the number of tokens a weight gradient must sum for one rank's bf16
// accumulator to stand out of the noise every rank shares (measured: at 2048 tokens the LM head's
// gradient on the rank is ≈15× its peer's error, the layers' ≈2.5×; at 256 tokens ≈1.1×).
const MinAccumulatedTokens = 2048

// rankAccumulatesStored makes TP rank tp's weight-gradient GEMMs accumulate in the stored dtype
// (simulate/runtime.AccumulateStored).
func rankAccumulatesStored(tp int) func(c *simulate.Compiled) error {
	return func(c *simulate.Compiled) error {
		for _, prog := range c.Programs {
			if prog.Coord[simulate.AxisTP] != tp {
				continue
			}
			rewriteProgram(prog, func(o ir.Op) ([]ir.Op, bool) {
				if o.Op != ir.OpLinearGradWeight {
					return nil, false
				}
				o.Attr.Strs = map[string]string{simrt.AccumulateAttr: simrt.AccumulateStored}
				return []ir.Op{o}, true
			})
		}
		return nil
	}
}
