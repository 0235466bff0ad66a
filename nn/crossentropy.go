package nn

import (
	"math"

	"github.com/spcheck/spcheck/tensor"
)

// IgnoreIndex is the label that takes a token out of the loss (torch's ignore_index default,
// used by Megatron and HF for prompt and boundary tokens).
const IgnoreIndex = -100

// MinLossDenominator is the floor of Σ weights in a masked mean: Megatron-LM divides the MTP
// loss by clamp(num_tokens, min=1) (#3396) so that a depth with no valid token gives 0, not NaN.
const MinLossDenominator = 1.0

// CE is a masked-mean cross-entropy: per-token losses ℓ_i (0 where the label is IgnoreIndex),
// weights w_i = mask_i·[label_i ≠ IgnoreIndex], Denom = max(Σ w, MinLossDenominator) and
// Loss = Σ w_i ℓ_i / Denom.
type CE struct {
	Tokens  []float64
	Weights []float64
	Denom   float64
	Loss    float64
}

// CrossEntropy computes CE over logits [..., V] (one row per token) with labels and a loss mask
// (one value per token). A label outside [0,V) other than IgnoreIndex is a caller bug and
// panics.
func CrossEntropy(logits *tensor.Dense, labels []int, mask []float64) CE {
	tokens := TokenCrossEntropy(logits, labels)
	w := LossWeights(labels, mask)
	loss, denom := MaskedMean(tokens, w)
	return CE{Tokens: tokens, Weights: w, Denom: denom, Loss: loss}
}

// TokenCrossEntropy returns ℓ_i = logsumexp(z_i) − z_i[label_i] per row, 0 for IgnoreIndex
// (the −100 labels never leak a logsumexp term into the loss; cf. ms-swift #8194).
func TokenCrossEntropy(logits *tensor.Dense, labels []int) []float64 {
	ceShape("TokenCrossEntropy", logits, labels)
	m := RowMax(logits)
	return TokenCrossEntropyFromParts(m, RowSumExp(logits, m), TargetLogits(logits, labels, 0), labels)
}

// ceShape checks logits [..., V] against one label per row, each in [0,V) or IgnoreIndex.
func ceShape(op string, logits *tensor.Dense, labels []int) (n, v int) {
	n, v = lastDim(op, logits.Shape)
	if len(labels) != n {
		shapePanic(op, "%d labels for logits %v", len(labels), logits.Shape)
	}
	for i, l := range labels {
		if l != IgnoreIndex && (l < 0 || l >= v) {
			shapePanic(op, "label %d at token %d is outside [0,%d) and is not %d", l, i, v, IgnoreIndex)
		}
	}
	return n, v
}

// The vocab-parallel cross-entropy (Megatron's vocab_parallel_cross_entropy) is built from the
// per-shard pieces below: each rank holds the columns [vocabStart, vocabStart+Vlocal) of the
// logits; the global row max is the MAX all-reduce of RowMax, the sum of exponentials the SUM
// all-reduce of RowSumExp at that max, the target logit the SUM all-reduce of TargetLogits.

// RowMax returns max_j z_ij for every row of logits [..., V].
func RowMax(logits *tensor.Dense) []float64 {
	n, v := lastDim("RowMax", logits.Shape)
	out := make([]float64, n)
	for i := range out {
		m := math.Inf(-1)
		for _, x := range logits.Data[i*v : (i+1)*v] {
			m = math.Max(m, x)
		}
		out[i] = m
	}
	return out
}

// RowSumExp returns Σ_j exp(z_ij − m_i) for every row.
func RowSumExp(logits *tensor.Dense, m []float64) []float64 {
	n, v := lastDim("RowSumExp", logits.Shape)
	if len(m) != n {
		shapePanic("RowSumExp", "%d row maxima for %d rows", len(m), n)
	}
	out := make([]float64, n)
	for i := range out {
		s := 0.0
		for _, x := range logits.Data[i*v : (i+1)*v] {
			s += math.Exp(x - m[i])
		}
		out[i] = s
	}
	return out
}

// TargetLogits returns z_i[label_i − vocabStart] for the rows whose label falls in this shard's
// columns, 0 for the others and for IgnoreIndex.
func TargetLogits(logits *tensor.Dense, labels []int, vocabStart int) []float64 {
	n, v := lastDim("TargetLogits", logits.Shape)
	if len(labels) != n {
		shapePanic("TargetLogits", "%d labels for logits %v", len(labels), logits.Shape)
	}
	out := make([]float64, n)
	for i, l := range labels {
		if c := l - vocabStart; l != IgnoreIndex && c >= 0 && c < v {
			out[i] = logits.Data[i*v+c]
		}
	}
	return out
}

// TokenCrossEntropyFromParts returns ℓ_i = m_i + log(s_i) − target_i, 0 for IgnoreIndex, from
// the (all-reduced) row max, sum of exponentials and target logit.
func TokenCrossEntropyFromParts(m, s, target []float64, labels []int) []float64 {
	out := make([]float64, len(labels))
	for i, l := range labels {
		if l != IgnoreIndex {
			out[i] = m[i] + math.Log(s[i]) - target[i]
		}
	}
	return out
}

// LossWeights returns w_i = mask_i·[labels_i ≠ IgnoreIndex].
func LossWeights(labels []int, mask []float64) []float64 {
	if len(mask) != len(labels) {
		shapePanic("LossWeights", "%d mask values for %d labels", len(mask), len(labels))
	}
	w := make([]float64, len(labels))
	for i, l := range labels {
		if l != IgnoreIndex {
			w[i] = mask[i]
		}
	}
	return w
}

// MaskedMean returns Σ w_i x_i / Denom and Denom = max(Σ w_i, MinLossDenominator).
func MaskedMean(x, w []float64) (mean, denom float64) {
	if len(x) != len(w) {
		shapePanic("MaskedMean", "%d values and %d weights", len(x), len(w))
	}
	num := 0.0
	for i := range x {
		num += w[i] * x[i]
		denom += w[i]
	}
	denom = math.Max(denom, MinLossDenominator)
	return num / denom, denom
}

// CrossEntropyBackward returns dlogits of dloss·CE.Loss: for every token with weight w_i,
// dz_i = dloss·(w_i/denom)·(softmax(z_i) − onehot(label_i)); zero rows elsewhere.
func CrossEntropyBackward(logits *tensor.Dense, labels []int, weights []float64, denom, dloss float64) *tensor.Dense {
	n, _ := ceShape("CrossEntropyBackward", logits, labels)
	if len(weights) != n {
		shapePanic("CrossEntropyBackward", "%d weights for %d tokens", len(weights), n)
	}
	coef := make([]float64, n)
	for i, w := range weights {
		coef[i] = dloss * w / denom
	}
	m := RowMax(logits)
	return CrossEntropyShardBackward(logits, labels, 0, m, RowSumExp(logits, m), coef)
}

// CrossEntropyShardBackward is the backward on the vocab shard starting at vocabStart, given
// the global row max m and sum of exponentials s: dz_ij = coef_i·(exp(z_ij − m_i)/s_i −
// [vocabStart+j = label_i]), zero rows where coef_i = 0 or the label is IgnoreIndex.
func CrossEntropyShardBackward(logits *tensor.Dense, labels []int, vocabStart int, m, s, coef []float64) *tensor.Dense {
	n, v := lastDim("CrossEntropyShardBackward", logits.Shape)
	if len(labels) != n || len(m) != n || len(s) != n || len(coef) != n {
		shapePanic("CrossEntropyShardBackward", "labels %d, max %d, sumexp %d, coef %d for %d rows", len(labels), len(m), len(s), len(coef), n)
	}
	dz := tensor.New(logits.Shape...)
	for i := 0; i < n; i++ {
		c := coef[i]
		if c == 0 || labels[i] == IgnoreIndex {
			continue
		}
		z, d := logits.Data[i*v:(i+1)*v], dz.Data[i*v:(i+1)*v]
		for j, x := range z {
			d[j] = c * math.Exp(x-m[i]) / s[i]
		}
		if t := labels[i] - vocabStart; t >= 0 && t < v {
			d[t] -= c
		}
	}
	return dz
}
