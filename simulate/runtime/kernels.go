package runtime

import (
	"fmt"
	"math"
	"slices"

	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
)

// Kernel computes a local op's outputs from its inputs and attributes. Kernels never modify
// their inputs (a symbol's tensor may be shared, e.g. by reshape).
type Kernel func(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error)

// Kernels maps every local op of package ir to its CPU kernel. The model kernels are package
// nn's, the very functions the oracle runs, applied to this rank's shards.
var Kernels = map[string]Kernel{
	ir.OpZeros: func(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
		return one(tensor.New(a.IntList("shape")...))
	},
	ir.OpCopy:      func(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) { return one(in[0].Clone()) },
	ir.OpAdd:       kAdd,
	ir.OpScale:     func(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) { return one(in[0].Scale(a.Float("c"))) },
	ir.OpReshape:   kReshape,
	ir.OpNarrow:    kNarrow,
	ir.OpPad:       kPad,
	ir.OpConcat:    kConcat,
	ir.OpSplit:     kSplit,
	ir.OpFlatChunk: kFlatChunk,

	ir.OpEmbedding:        kEmbedding,
	ir.OpEmbeddingGrad:    kEmbeddingGrad,
	ir.OpLinear:           kLinear,
	ir.OpLinearGradInput:  kLinearGradInput,
	ir.OpLinearGradWeight: kLinearGradWeight,
	ir.OpRMSNorm:          kRMSNorm,
	ir.OpRMSNormGrad:      kRMSNormGrad,
	ir.OpRoPE:             kRoPE,
	ir.OpRoPEGrad:         kRoPEGrad,
	ir.OpAttention:        kAttention,
	ir.OpAttentionGrad:    kAttentionGrad,
	ir.OpSwiGLU:           func(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) { return one(nn.SwiGLU(in[0], in[1])) },
	ir.OpSwiGLUGrad:       kSwiGLUGrad,
	ir.OpVocabMax:         kVocabMax,
	ir.OpVocabSumExp:      kVocabSumExp,
	ir.OpVocabTarget:      kVocabTarget,
	ir.OpCELoss:           kCELoss,
	ir.OpCEGrad:           kCEGrad,
}

func one(t *tensor.Dense) ([]*tensor.Dense, error) { return []*tensor.Dense{t}, nil }

func kAdd(in []*tensor.Dense, _ ir.Attrs) ([]*tensor.Dense, error) {
	if !tensor.SameShape(in[0].Shape, in[1].Shape) {
		return nil, fmt.Errorf("add of shapes %v and %v", in[0].Shape, in[1].Shape)
	}
	out := in[0].Clone()
	out.AddInPlace(in[1])
	return one(out)
}

func kReshape(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	shape := a.IntList("shape")
	if tensor.Numel(shape) != in[0].Numel() {
		return nil, fmt.Errorf("reshape %v to %v", in[0].Shape, shape)
	}
	return one(in[0].Reshape(shape...))
}

func kNarrow(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	return one(in[0].Narrow(a.Int("dim"), a.Int("start"), a.Int("len")))
}

func kPad(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	return one(in[0].Pad(a.Int("dim"), a.Int("before"), a.Int("after"), 0))
}

func kConcat(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	return one(tensor.Concat(a.Int("dim"), in...))
}

func kSplit(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	sizes := a.IntList("sizes")
	return in[0].Split(a.Int("dim"), sizes...), nil
}

// kFlatChunk is the sender's half of partial P2P: flat chunk index of parts of the flattened
// tensor (numel must divide; the planner falls back to a full send when it does not).
func kFlatChunk(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	parts, idx := a.Int("parts"), a.Int("index")
	n := in[0].Numel()
	if parts < 1 || idx < 0 || idx >= parts || n%parts != 0 {
		return nil, fmt.Errorf("flat chunk %d of %d of %d elements", idx, parts, n)
	}
	c := n / parts
	return one(tensor.FromData([]int{c}, append([]float64(nil), in[0].Data[idx*c:(idx+1)*c]...)))
}

// ints converts a tensor of integer values (ids, labels) to []int.
func ints(t *tensor.Dense) []int {
	out := make([]int, len(t.Data))
	for i, v := range t.Data {
		out[i] = int(v)
	}
	return out
}

func kEmbedding(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	ids, w := in[0], in[1]
	y := nn.EmbeddingShard(ints(ids), w, a.Int("offset"))
	return one(y.Reshape(append(append([]int{}, ids.Shape...), w.Shape[1])...))
}

func kEmbeddingGrad(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	return one(nn.EmbeddingShardBackward(ints(in[0]), in[1], a.Int("rows"), a.Int("offset")))
}

func kLinear(in []*tensor.Dense, _ ir.Attrs) ([]*tensor.Dense, error) {
	return one(nn.Linear(in[0], in[1]))
}

func kLinearGradInput(in []*tensor.Dense, _ ir.Attrs) ([]*tensor.Dense, error) {
	dy, w := in[0], in[1]
	if len(w.Shape) != 2 || dy.Rank() == 0 {
		return nil, fmt.Errorf("linear_grad_input of dy %v and weight %v", dy.Shape, w.Shape)
	}
	xShape := append(append([]int{}, dy.Shape[:dy.Rank()-1]...), w.Shape[1])
	return one(nn.LinearGradInput(w, dy, xShape))
}

func kLinearGradWeight(in []*tensor.Dense, _ ir.Attrs) ([]*tensor.Dense, error) {
	return one(nn.LinearGradWeight(in[1], in[0]))
}

func kRMSNorm(in []*tensor.Dense, _ ir.Attrs) ([]*tensor.Dense, error) {
	y, rstd := nn.RMSNorm(in[0], in[1])
	return []*tensor.Dense{y, tensor.FromData([]int{len(rstd)}, rstd)}, nil
}

func kRMSNormGrad(in []*tensor.Dense, _ ir.Attrs) ([]*tensor.Dense, error) {
	dx, dw := nn.RMSNormBackward(in[0], in[1], in[2].Data, in[3])
	return []*tensor.Dense{dx, dw}, nil
}

func kRoPE(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	return one(nn.RoPE(in[0], a.IntList("pos")))
}

func kRoPEGrad(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	return one(nn.RoPEBackward(in[0], a.IntList("pos")))
}

// kAttention is causal attention inside the packed sequences cu. cu may end before the row
// length S, as flash-attn's varlen kernels allow: tokens past cu[-1] belong to no sequence and
// are not processed, so their output (and their probabilities) are zero. (A wrong cu_seqlens
// such as the compacted one proposed in ms-swift #6496's review does this.)
func kAttention(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	cu, end := attentionCu(in[0], a.IntList("cu"))
	out, probs := nn.Attention(in[0], in[1], in[2], cu)
	if end < len(cu)-1 { // zero the tail segment: it was never processed
		b, s, heads := out.Shape[0], out.Shape[1], out.Shape[2]
		tail := cu[end]
		row := out.Numel() / (b * s)
		for r := 0; r < b; r++ {
			clear(out.Data[(r*s+tail)*row : (r+1)*s*row])
			for h := 0; h < heads; h++ {
				base := (r*heads + h) * s * s
				clear(probs.Data[base+tail*s : base+s*s])
			}
		}
	}
	return []*tensor.Dense{out, probs}, nil
}

// kAttentionGrad is the adjoint of kAttention; with cu ending before S the tail's zero
// probabilities give it zero gradients.
func kAttentionGrad(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	cu, _ := attentionCu(in[0], a.IntList("cu"))
	dq, dk, dv := nn.AttentionBackward(in[0], in[1], in[2], in[3], in[4], cu)
	return []*tensor.Dense{dq, dk, dv}, nil
}

// attentionCu returns cu, extended by a tail segment [cu[-1], S) when cu ends before the row
// length S of q [B,S,h,hd], and the index of cu's last entry.
func attentionCu(q *tensor.Dense, cu []int) ([]int, int) {
	end := len(cu) - 1
	if q.Rank() == 4 && end >= 0 && cu[end] < q.Shape[1] && cu[end] > 0 {
		return append(slices.Clone(cu), q.Shape[1]), end
	}
	return cu, end
}

func kSwiGLUGrad(in []*tensor.Dense, _ ir.Attrs) ([]*tensor.Dense, error) {
	dg, du := nn.SwiGLUBackward(in[0], in[1], in[2])
	return []*tensor.Dense{dg, du}, nil
}

// Vocab-parallel cross-entropy (Megatron's _VocabParallelCrossEntropy). Each rank holds the
// logits of vocab columns [offset, offset+valid) in the first valid columns of its shard; the
// rest of the shard is vocab padding and never enters the softmax. The planner all-reduces the
// row max (max) and the row sum of exponentials and the target logit (sum) between these ops.

// rowsOf splits a [..., V] tensor into rows.
func rowsOf(t *tensor.Dense) (rows, cols int) {
	if t.Rank() == 0 {
		return 1, 1
	}
	cols = t.Shape[t.Rank()-1]
	if cols == 0 {
		return 0, 0
	}
	return t.Numel() / cols, cols
}

func rowShape(t *tensor.Dense) []int { return append([]int{}, t.Shape[:t.Rank()-1]...) }

func checkValid(t *tensor.Dense, valid int) error {
	if t.Rank() == 0 || valid < 0 || valid > t.Shape[t.Rank()-1] {
		return fmt.Errorf("%d valid vocab columns in logits %v", valid, t.Shape)
	}
	return nil
}

func kVocabMax(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	z, valid := in[0], a.Int("valid")
	if err := checkValid(z, valid); err != nil {
		return nil, err
	}
	rows, v := rowsOf(z)
	m := tensor.New(rowShape(z)...)
	for r := 0; r < rows; r++ {
		best := math.Inf(-1)
		for _, x := range z.Data[r*v : r*v+valid] {
			best = math.Max(best, x)
		}
		m.Data[r] = best
	}
	return one(m)
}

func kVocabSumExp(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	z, m, valid := in[0], in[1], a.Int("valid")
	if err := checkValid(z, valid); err != nil {
		return nil, err
	}
	rows, v := rowsOf(z)
	if m.Numel() != rows {
		return nil, fmt.Errorf("row max %v for logits %v", m.Shape, z.Shape)
	}
	s := tensor.New(rowShape(z)...)
	for r := 0; r < rows; r++ {
		sum := 0.0
		for _, x := range z.Data[r*v : r*v+valid] {
			sum += math.Exp(x - m.Data[r])
		}
		s.Data[r] = sum
	}
	return one(s)
}

func kVocabTarget(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	z, labels, off, valid := in[0], in[1], a.Int("offset"), a.Int("valid")
	if err := checkValid(z, valid); err != nil {
		return nil, err
	}
	rows, v := rowsOf(z)
	if labels.Numel() != rows {
		return nil, fmt.Errorf("labels %v for logits %v", labels.Shape, z.Shape)
	}
	t := tensor.New(rowShape(z)...)
	for r := 0; r < rows; r++ {
		if c := int(labels.Data[r]) - off; c >= 0 && c < valid {
			t.Data[r] = z.Data[r*v+c]
		}
	}
	return one(t)
}

// kCELoss is Σ_i w_i·(m_i + log s_i − t_i): the weighted sum of per-token losses, with w_i the
// token's share of the loss (0 for ignored tokens, whose terms are skipped so that they never
// contribute a logsumexp).
func kCELoss(in []*tensor.Dense, _ ir.Attrs) ([]*tensor.Dense, error) {
	m, s, t, w := in[0], in[1], in[2], in[3]
	n := m.Numel()
	if s.Numel() != n || t.Numel() != n || w.Numel() != n {
		return nil, fmt.Errorf("ce_loss of %v %v %v weights %v", m.Shape, s.Shape, t.Shape, w.Shape)
	}
	loss := 0.0
	for i := 0; i < n; i++ {
		if w.Data[i] != 0 {
			loss += w.Data[i] * (m.Data[i] + math.Log(s.Data[i]) - t.Data[i])
		}
	}
	return one(tensor.Scalar(loss))
}

// kCEGrad is scale·w_i·(softmax_j − [j = label_i]) over the shard's valid columns; padding
// columns get zero.
func kCEGrad(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
	z, m, s, labels, w := in[0], in[1], in[2], in[3], in[4]
	off, valid, scale := a.Int("offset"), a.Int("valid"), a.Float("scale")
	if err := checkValid(z, valid); err != nil {
		return nil, err
	}
	rows, v := rowsOf(z)
	if m.Numel() != rows || s.Numel() != rows || labels.Numel() != rows || w.Numel() != rows {
		return nil, fmt.Errorf("ce_grad of logits %v with rows %v %v %v %v", z.Shape, m.Shape, s.Shape, labels.Shape, w.Shape)
	}
	dz := tensor.New(z.Shape...)
	for r := 0; r < rows; r++ {
		c := scale * w.Data[r]
		if c == 0 {
			continue
		}
		zr, dr := z.Data[r*v:r*v+valid], dz.Data[r*v:r*v+valid]
		for j, x := range zr {
			dr[j] = c * math.Exp(x-m.Data[r]) / s.Data[r]
		}
		if k := int(labels.Data[r]) - off; k >= 0 && k < valid {
			dr[k] -= c
		}
	}
	return one(dz)
}
