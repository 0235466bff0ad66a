package nn

import (
	"math"

	"github.com/spcheck/spcheck/tensor"
)

// SwiGLU returns silu(gate)·up element-wise (silu(x) = x·σ(x)), the gated MLP activation of
// Llama/Megatron's swiglu. Element-wise, so any shard of the FFN columns works alone.
func SwiGLU(gate, up *tensor.Dense) *tensor.Dense {
	sameShape("SwiGLU", "gate and up", gate.Shape, up.Shape)
	y := tensor.New(gate.Shape...)
	for i, g := range gate.Data {
		y.Data[i] = g * sigmoid(g) * up.Data[i]
	}
	return y
}

// SwiGLUBackward returns dgate = dy·up·silu′(gate) and dup = dy·silu(gate), with
// silu′(x) = σ(x)·(1 + x·(1 − σ(x))).
func SwiGLUBackward(gate, up, dy *tensor.Dense) (dgate, dup *tensor.Dense) {
	sameShape("SwiGLUBackward", "gate and up", gate.Shape, up.Shape)
	sameShape("SwiGLUBackward", "gate and dy", gate.Shape, dy.Shape)
	dgate, dup = tensor.New(gate.Shape...), tensor.New(gate.Shape...)
	for i, g := range gate.Data {
		sg := sigmoid(g)
		dup.Data[i] = dy.Data[i] * g * sg
		dgate.Data[i] = dy.Data[i] * up.Data[i] * sg * (1 + g*(1-sg))
	}
	return dgate, dup
}

// sigmoid is 1/(1+e^−x), written to avoid overflow of e^−x for very negative x.
func sigmoid(x float64) float64 {
	if x >= 0 {
		return 1 / (1 + math.Exp(-x))
	}
	e := math.Exp(x)
	return e / (1 + e)
}
