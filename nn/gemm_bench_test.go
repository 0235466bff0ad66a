package nn

import (
	"fmt"
	"testing"

	"github.com/spcheck/spcheck/internal/testenv"
)

// BenchmarkGemm compares the blocked GEMM with gonum's Dgemm, side by side in one run, at the
// shapes of the oracle benchmark model (oracle/bench_test.go: 1024 tokens, hidden 512, ffn
// 1376, vocab 1000, 8 heads of 64 over sequences of 512): the forward y = x·Wᵀ of each linear,
// the two backward products of the FFN's, and attention's per-head products.
func BenchmarkGemm(b *testing.B) {
	for _, s := range []gemmCase{
		{reason: "y=xWt/qkvo", tB: true, m: 1024, n: 512, k: 512},
		{reason: "y=xWt/gate_up", tB: true, m: 1024, n: 1376, k: 512},
		{reason: "y=xWt/down", tB: true, m: 1024, n: 512, k: 1376},
		{reason: "y=xWt/lm_head", tB: true, m: 1024, n: 1000, k: 512},
		{reason: "dx=dyW/gate_up", m: 1024, n: 512, k: 1376},
		{reason: "dW=dytx/gate_up", tA: true, m: 1376, n: 512, k: 1024},
		{reason: "attn/s=qkt", tB: true, m: 512, n: 512, k: 64, padA: 448, padB: 448},
		{reason: "attn/o=pv", m: 512, n: 64, k: 512, padB: 448, pad: 448},
		{reason: "attn/dv=ptdo", tA: true, m: 512, n: 64, k: 512, padB: 448, pad: 448},
	} {
		s.alpha = 1
		a, lda, bm, ldb, c, ldc := s.operands()
		flops := 2 * float64(s.m*s.n*s.k)
		for _, impl := range []struct {
			name string
			f    func()
		}{
			{"gonum", func() { gemmGonum(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, ldc) }},
			{"blocked", func() { gemm(s.tA, s.tB, s.m, s.n, s.k, 1, a, lda, bm, ldb, 0, c, ldc) }},
		} {
			b.Run(fmt.Sprintf("%s/%dx%dx%d/%s", s.reason, s.m, s.n, s.k, impl.name), func(b *testing.B) {
				cpu0 := testenv.ProcessCPU()
				for b.Loop() {
					impl.f()
				}
				b.ReportMetric(flops*float64(b.N)/b.Elapsed().Seconds()/1e9, "GFLOP/s")
				if cpu := (testenv.ProcessCPU() - cpu0).Seconds(); cpu > 0 {
					b.ReportMetric(flops*float64(b.N)/cpu/1e9, "GFLOP/cpu-s")
				}
			})
		}
	}
}
