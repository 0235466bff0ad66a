package oracle

import (
	"fmt"
	"github.com/spcheck/spcheck/model"
	"testing"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas64"
)

// benchPlan is the benchmark model: hidden 512, 4 layers, seq 512, batch 2, 8 heads,
// ffn 1376 (≈ 8/3·H, Llama's SwiGLU sizing), vocab 1000, one MTP depth.
const benchPlan = "hidden=512,heads=8,layers=4,ffn=1376,seq=512,batch=2,vocab=1000,mtp=1"

// matmulFlops counts the floating-point operations of every matrix product of one forward and
// backward of m (2 per multiply-add; attention over each sequence's full square block, as
// nn.Attention computes it; the backward of each product is two products of the same size).
func matmulFlops(m plan.Model) float64 {
	n, h, f, v := float64(m.Batch*m.Seq), float64(m.Hidden), float64(m.FFN), float64(m.Vocab)
	sq := 0.0
	for _, l := range m.SeqLens() {
		sq += float64(l * l)
	}
	attn := 2 * 2 * float64(m.Batch) * sq * h // q·kᵀ and P·v over every head
	layer := 2*n*h*h*4 + 2*n*h*f*3 + attn
	layers := float64(m.Layers + m.MTP)
	fwd := layers*layer + float64(1+m.MTP)*2*n*h*v + float64(m.MTP)*2*n*2*h*h
	return 3 * fwd
}

func BenchmarkForwardBackward(b *testing.B) {
	p, err := plan.Parse(benchPlan)
	if err != nil {
		b.Fatal(err)
	}
	params, in := model.InitParams(p.Model), model.MakeInputs(p.Model)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := RunWith(p.Model, params, in); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(matmulFlops(p.Model)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
	b.ReportMetric(matmulFlops(p.Model)/1e9, "GFLOP/op")
}

// BenchmarkGemm measures gonum's native Dgemm alone (through blas64, whose default is the
// native implementation) at the benchmark model's shapes: the forward y = x·Wᵀ (x [B·S, in],
// W [out, in]) of each linear, and for the FFN shape also the two backward products
// dx = dy·W and dW = dyᵀ·x, so the oracle's share of the GEMM peak can be read off.
func BenchmarkGemm(b *testing.B) {
	for _, s := range []struct {
		name    string
		tA, tB  blas.Transpose
		m, n, k int
	}{
		{"y=xWt/qkvo", blas.NoTrans, blas.Trans, 1024, 512, 512},
		{"y=xWt/gate_up", blas.NoTrans, blas.Trans, 1024, 1376, 512},
		{"y=xWt/down", blas.NoTrans, blas.Trans, 1024, 512, 1376},
		{"y=xWt/lm_head", blas.NoTrans, blas.Trans, 1024, 1000, 512},
		{"dx=dyW/gate_up", blas.NoTrans, blas.NoTrans, 1024, 512, 1376},
		{"dW=dytx/gate_up", blas.Trans, blas.NoTrans, 1376, 512, 1024},
	} {
		b.Run(fmt.Sprintf("%s/%dx%dx%d", s.name, s.m, s.n, s.k), func(b *testing.B) {
			a := operand("a", s.tA, s.m, s.k)
			bm := operand("b", s.tB, s.k, s.n)
			c := blas64.General{Rows: s.m, Cols: s.n, Stride: s.n, Data: make([]float64, s.m*s.n)}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				blas64.Gemm(s.tA, s.tB, 1, a, bm, 0, c)
			}
			b.ReportMetric(2*float64(s.m*s.n*s.k)*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
		})
	}
}

// operand is a random rows×cols operand of op(A), stored transposed when t is Trans.
func operand(name string, t blas.Transpose, rows, cols int) blas64.General {
	if t == blas.Trans {
		rows, cols = cols, rows
	}
	x := tensor.NewRNG(1, name).NormalTensor(1, rows, cols)
	return blas64.General{Rows: rows, Cols: cols, Stride: cols, Data: x.Data}
}
