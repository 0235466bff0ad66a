package nn

import (
	"math"

	"github.com/spcheck/spcheck/tensor"
)

// RoPEBase is θ in the rotary frequencies θ^(−2j/hd): the value of Megatron-LM's
// rotary_base default and of Llama/GPT-NeoX (10000).
const RoPEBase = 10000.0

// RoPE applies rotary position embeddings in the rotate-half convention (GPT-NeoX, Llama,
// Megatron-LM's default; not the interleaved GPT-J pairing) to x [..., heads, hd]:
// for j < hd/2, with a = pos·RoPEBase^(−2j/hd),
//
//	y_j        = x_j·cos a − x_{j+hd/2}·sin a
//	y_{j+hd/2} = x_{j+hd/2}·cos a + x_j·sin a
//
// pos gives one position per token (the product of the dims before heads), so packed
// sequences pass positions that restart at 0 in every sequence. Heads are independent: any
// subset of heads can be rotated alone.
func RoPE(x *tensor.Dense, pos []int) *tensor.Dense { return rotate("RoPE", x, pos, 1) }

// RoPEBackward is the adjoint of RoPE: the rotation by −a applied to dy.
func RoPEBackward(dy *tensor.Dense, pos []int) *tensor.Dense {
	return rotate("RoPEBackward", dy, pos, -1)
}

// RoPEInvFreq returns RoPEBase^(−2j/hd) for j < hd/2.
func RoPEInvFreq(hd int) []float64 {
	f := make([]float64, hd/2)
	for j := range f {
		f[j] = 1 / math.Pow(RoPEBase, float64(2*j)/float64(hd))
	}
	return f
}

// rotate rotates pairs (j, j+hd/2) of every head by sign·pos·invFreq_j.
func rotate(op string, x *tensor.Dense, pos []int, sign float64) *tensor.Dense {
	if len(x.Shape) < 3 {
		shapePanic(op, "want [..., heads, hd], got %v", x.Shape)
	}
	hd := x.Shape[len(x.Shape)-1]
	heads := x.Shape[len(x.Shape)-2]
	if hd%2 != 0 {
		shapePanic(op, "head dim %d is odd", hd)
	}
	tokens := x.Numel() / max(heads*hd, 1)
	if len(pos) != tokens {
		shapePanic(op, "%d positions for %d tokens of %v", len(pos), tokens, x.Shape)
	}
	half := hd / 2
	inv := RoPEInvFreq(hd)
	cos, sin := make([]float64, half), make([]float64, half)
	y := tensor.New(x.Shape...)
	for t := 0; t < tokens; t++ {
		for j := range inv {
			a := float64(pos[t]) * inv[j]
			cos[j], sin[j] = math.Cos(a), sign*math.Sin(a)
		}
		for h := 0; h < heads; h++ {
			off := (t*heads + h) * hd
			xs, ys := x.Data[off:off+hd], y.Data[off:off+hd]
			for j := 0; j < half; j++ {
				x1, x2 := xs[j], xs[j+half]
				ys[j] = x1*cos[j] - x2*sin[j]
				ys[j+half] = x2*cos[j] + x1*sin[j]
			}
		}
	}
	return y
}
