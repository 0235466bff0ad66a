package nn

import (
	"math"

	"github.com/spcheck/spcheck/tensor"
)

// Attention is causal softmax attention inside packed sequences. q, k, v are [B,S,heads,hd];
// cu gives the sequences of every row (see CheckCuSeqlens). Token i attends to token j iff both
// are in the same sequence and j ≤ i:
//
//	P = softmax(q·kᵀ/√hd + mask),  out = P·v.
//
// It returns out [B,S,heads,hd] and P [B,heads,S,S] (zero outside the allowed pairs), which the
// backward needs. Heads are independent, so a tensor-parallel rank passes its own heads.
func Attention(q, k, v *tensor.Dense, cu []int) (out, probs *tensor.Dense) {
	b, s, heads, hd := attnShape("Attention", q, k, v, cu)
	out = tensor.New(q.Shape...)
	probs = tensor.New(b, heads, s, s)
	scale := 1 / math.Sqrt(float64(hd))
	ld := heads * hd
	for r := 0; r < b; r++ {
		for h := 0; h < heads; h++ {
			for i := 1; i < len(cu); i++ {
				lo, n := cu[i-1], cu[i]-cu[i-1]
				qkv := (r*s+lo)*ld + h*hd         // first element of this head's segment
				pOff := ((r*heads+h)*s+lo)*s + lo // top-left of the segment's diagonal block
				p := probs.Data[pOff:]
				gemm(false, true, n, n, hd, scale, q.Data[qkv:], ld, k.Data[qkv:], ld, 0, p, s)
				causalSoftmax(p, n, s)
				gemm(false, false, n, hd, n, 1, p, s, v.Data[qkv:], ld, 0, out.Data[qkv:], ld)
			}
		}
	}
	return out, probs
}

func attnShape(op string, q, k, v *tensor.Dense, cu []int) (b, s, heads, hd int) {
	if len(q.Shape) != 4 {
		shapePanic(op, "want q [B,S,heads,hd], got %v", q.Shape)
	}
	sameShape(op, "q and k", q.Shape, k.Shape)
	sameShape(op, "q and v", q.Shape, v.Shape)
	b, s, heads, hd = q.Shape[0], q.Shape[1], q.Shape[2], q.Shape[3]
	mustCu(op, cu, s)
	return b, s, heads, hd
}

// causalSoftmax turns the n×n scores block (row stride ld) into causal softmax probabilities:
// row i keeps columns j ≤ i and zeroes the rest.
func causalSoftmax(p []float64, n, ld int) {
	for i := 0; i < n; i++ {
		row := p[i*ld : i*ld+n]
		m := math.Inf(-1)
		for _, x := range row[:i+1] {
			m = math.Max(m, x)
		}
		sum := 0.0
		for j := 0; j <= i; j++ {
			row[j] = math.Exp(row[j] - m)
			sum += row[j]
		}
		for j := 0; j <= i; j++ {
			row[j] /= sum
		}
		for j := i + 1; j < n; j++ {
			row[j] = 0
		}
	}
}

// AttentionBackward returns dq, dk, dv of Attention given its inputs, the saved P and dout:
//
//	dv = Pᵀ·dout,  dP = dout·vᵀ,  dS = P∘(dP − rowsum(P∘dP)),  dq = dS·k/√hd,  dk = dSᵀ·q/√hd.
func AttentionBackward(q, k, v, probs, dout *tensor.Dense, cu []int) (dq, dk, dv *tensor.Dense) {
	b, s, heads, hd := attnShape("AttentionBackward", q, k, v, cu)
	sameShape("AttentionBackward", "q and dout", q.Shape, dout.Shape)
	sameShape("AttentionBackward", "probs", probs.Shape, []int{b, heads, s, s})
	dq, dk, dv = tensor.New(q.Shape...), tensor.New(q.Shape...), tensor.New(q.Shape...)
	scale := 1 / math.Sqrt(float64(hd))
	ld := heads * hd
	ds := make([]float64, s*s) // dP, then dS, of one segment (n×n, row stride n)
	for r := 0; r < b; r++ {
		for h := 0; h < heads; h++ {
			for i := 1; i < len(cu); i++ {
				lo, n := cu[i-1], cu[i]-cu[i-1]
				qkv := (r*s+lo)*ld + h*hd
				p := probs.Data[((r*heads+h)*s+lo)*s+lo:]
				gemm(true, false, n, hd, n, 1, p, s, dout.Data[qkv:], ld, 0, dv.Data[qkv:], ld)
				gemm(false, true, n, n, hd, 1, dout.Data[qkv:], ld, v.Data[qkv:], ld, 0, ds, n)
				softmaxBackward(p, s, ds, n)
				gemm(false, false, n, hd, n, scale, ds, n, k.Data[qkv:], ld, 0, dq.Data[qkv:], ld)
				gemm(true, false, n, hd, n, scale, ds, n, q.Data[qkv:], ld, 0, dk.Data[qkv:], ld)
			}
		}
	}
	return dq, dk, dv
}

// softmaxBackward overwrites the n×n block dP (stride n) with dS = P∘(dP − rowsum(P∘dP)),
// where P has stride ldp and is zero above the diagonal (so dS is too).
func softmaxBackward(p []float64, ldp int, dp []float64, n int) {
	for i := 0; i < n; i++ {
		pr, dr := p[i*ldp:i*ldp+n], dp[i*n:(i+1)*n]
		dot := 0.0
		for j := 0; j <= i; j++ {
			dot += pr[j] * dr[j]
		}
		for j := 0; j <= i; j++ {
			dr[j] = pr[j] * (dr[j] - dot)
		}
		for j := i + 1; j < n; j++ {
			dr[j] = 0
		}
	}
}
