package nn

import (
	"sync/atomic"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"
)

// impl is gonum's native Go BLAS, named directly rather than through blas64.Use so that no
// other package can swap in a cgo BLAS whose bits depend on threads and CPU. Its Dgemm is
// reproducible for any GOMAXPROCS: whether it runs in parallel depends only on m and n, and in
// parallel every block of C is owned by one goroutine that walks the k dimension in order, so
// each output element is summed in the same order however many workers there are (checked by
// TestGemmGOMAXPROCS).
var impl gonum.Implementation

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

// gemm computes C = alpha·op(A)·op(B) + beta·C with C m×n, op(A) m×k, op(B) k×n, all row-major
// with leading dimensions lda, ldb, ldc (so strided views, e.g. one head of [B,S,heads,hd],
// need no copy).
func gemm(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	if k == 0 { // an empty inner dim (e.g. an empty shard) contributes nothing
		for i := 0; i < m; i++ {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				row[j] *= beta
			}
		}
		return
	}
	if beta == 0 && !gonumOnly.Load() && blockedGemm(tA, tB, m, n, k, alpha, a, lda, b, ldb, c, ldc) {
		return
	}
	gemmGonum(tA, tB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

// gemmGonum is gonum's Dgemm: the products blockedGemm does not take, and the reference its
// tests and benchmarks compare it with.
func gemmGonum(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, beta float64, c []float64, ldc int) {
	impl.Dgemm(trans(tA), trans(tB), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}

var gonumOnly atomic.Bool

// GonumOnly sends every matrix product to gonum's Dgemm when on, and returns the previous
// setting. The blocked GEMM gives the same bits, so this changes speed, never a result: it
// exists for benchmarks that compare the two and for the tests that check they agree on whole
// models.
func GonumOnly(on bool) (previous bool) { return gonumOnly.Swap(on) }
