package nn

import (
	"math"

	"github.com/spcheck/spcheck/tensor"
)

// RMSNormEps is ε in y = x·w / sqrt(mean(x²) + ε): Megatron-LM's TransformerConfig default
// layernorm_epsilon (1e-5), which its RMSNorm uses too.
const RMSNormEps = 1e-5

// RMSNorm normalises every row (the last dim, H) of x and scales it by w [H]:
// y = x·w·r with r = 1/sqrt(mean_j x_j² + RMSNormEps). It returns y and r per row, which the
// backward needs. Rows are independent, so any subset of rows (a sequence shard) can be
// normalised alone.
func RMSNorm(x, w *tensor.Dense) (y *tensor.Dense, rstd []float64) {
	rows, h := lastDim("RMSNorm", x.Shape)
	checkNormWeight("RMSNorm", w, h)
	y = tensor.New(x.Shape...)
	rstd = make([]float64, rows)
	for r := 0; r < rows; r++ {
		xr := x.Data[r*h : (r+1)*h]
		ss := 0.0
		for _, v := range xr {
			ss += v * v
		}
		rs := 1 / math.Sqrt(ss/float64(h)+RMSNormEps)
		rstd[r] = rs
		yr := y.Data[r*h : (r+1)*h]
		for j, v := range xr {
			yr[j] = v * rs * w.Data[j]
		}
	}
	return y, rstd
}

func checkNormWeight(op string, w *tensor.Dense, h int) {
	if len(w.Shape) != 1 || w.Shape[0] != h {
		shapePanic(op, "weight %v is not [%d]", w.Shape, h)
	}
}

// RMSNormBackward returns dx and dw of RMSNorm given x, w, the saved r per row and dy:
//
//	g = dy·w,  dx = r·g − x·r³·(Σ_j g_j x_j)/H,  dw = Σ_rows dy·x·r.
//
// On a subset of rows dw is that subset's partial sum (sequence-parallel norms must SUM it
// over the group).
func RMSNormBackward(x, w *tensor.Dense, rstd []float64, dy *tensor.Dense) (dx, dw *tensor.Dense) {
	rows, h := lastDim("RMSNormBackward", x.Shape)
	checkNormWeight("RMSNormBackward", w, h)
	sameShape("RMSNormBackward", "x and dy", x.Shape, dy.Shape)
	if len(rstd) != rows {
		shapePanic("RMSNormBackward", "%d saved rstd for %d rows", len(rstd), rows)
	}
	dx = tensor.New(x.Shape...)
	dw = tensor.New(h)
	for r := 0; r < rows; r++ {
		xr, dyr, dxr := x.Data[r*h:(r+1)*h], dy.Data[r*h:(r+1)*h], dx.Data[r*h:(r+1)*h]
		rs := rstd[r]
		dot := 0.0
		for j := range xr {
			dot += dyr[j] * w.Data[j] * xr[j]
		}
		c := rs * rs * rs * dot / float64(h)
		for j := range xr {
			dxr[j] = rs*dyr[j]*w.Data[j] - xr[j]*c
			dw.Data[j] += dyr[j] * xr[j] * rs
		}
	}
	return dx, dw
}
