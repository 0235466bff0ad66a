package nn

import "github.com/spcheck/spcheck/tensor"

// Linear returns y = x·Wᵀ for x [..., in] and W [out, in] (torch.nn.Linear, no bias):
// y [..., out].
//
// On shards: with W's rows [lo,hi) (a column-parallel shard) y holds columns [lo,hi) of the
// full output; with W's and x's columns [lo,hi) (a row-parallel shard) y is a partial sum
// whose sum over shards is the full output.
func Linear(x, w *tensor.Dense) *tensor.Dense {
	n, in := lastDim("Linear", x.Shape)
	out := linearOut("Linear", w, in)
	shape := append(append([]int{}, x.Shape[:len(x.Shape)-1]...), out)
	y := tensor.New(shape...)
	gemm(false, true, n, out, in, 1, x.Data, in, w.Data, in, 0, y.Data, out)
	return y
}

func linearOut(op string, w *tensor.Dense, in int) int {
	if len(w.Shape) != 2 || w.Shape[1] != in {
		shapePanic(op, "weight %v is not [out, %d]", w.Shape, in)
	}
	return w.Shape[0]
}

// LinearBackward returns the gradients of y = x·Wᵀ given dy: dx = dy·W (shape of x) and
// dW = dyᵀ·x summed over every leading index of x (shape of W).
func LinearBackward(x, w, dy *tensor.Dense) (dx, dw *tensor.Dense) {
	return LinearGradInput(w, dy, x.Shape), LinearGradWeight(x, dy)
}

// LinearGradInput returns dx = dy·W reshaped to xShape. With a column-parallel shard of W it is
// the shard's partial dx (all-reduced over TP in Megatron's column-parallel backward).
func LinearGradInput(w, dy *tensor.Dense, xShape []int) *tensor.Dense {
	n, out := lastDim("LinearGradInput", dy.Shape)
	if len(w.Shape) != 2 || w.Shape[0] != out {
		shapePanic("LinearGradInput", "weight %v is not [%d, in]", w.Shape, out)
	}
	in := w.Shape[1]
	if tensor.Numel(xShape) != n*in || len(xShape) == 0 || xShape[len(xShape)-1] != in {
		shapePanic("LinearGradInput", "x shape %v does not match dy %v and weight %v", xShape, dy.Shape, w.Shape)
	}
	dx := tensor.New(xShape...)
	gemm(false, false, n, in, out, 1, dy.Data, out, w.Data, in, 0, dx.Data, in)
	return dx
}

// LinearGradWeight returns dW = dyᵀ·x [out, in], the sum over every token of dy⊗x.
func LinearGradWeight(x, dy *tensor.Dense) *tensor.Dense {
	n, in := lastDim("LinearGradWeight", x.Shape)
	m, out := lastDim("LinearGradWeight", dy.Shape)
	if m != n {
		shapePanic("LinearGradWeight", "x %v and dy %v have different token counts", x.Shape, dy.Shape)
	}
	dw := tensor.New(out, in)
	gemm(true, false, out, in, n, 1, dy.Data, out, x.Data, in, 0, dw.Data, in)
	return dw
}
