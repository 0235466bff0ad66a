package nn

import (
	"fmt"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/tensor"
)

// gemmCase is one product: shapes, transposes, alpha and padding of the leading dimensions
// (strided views, as attention's per-head products use).
type gemmCase struct {
	reason          string
	tA, tB          bool
	m, n, k         int
	alpha           float64
	padA, padB, pad int
}

func (g gemmCase) String() string {
	return fmt.Sprintf("%s tA=%v tB=%v %dx%dx%d alpha=%g", g.reason, g.tA, g.tB, g.m, g.n, g.k, g.alpha)
}

// operands returns A, B, C and their leading dimensions, A and B drawn from the counter RNG.
func (g gemmCase) operands() (a []float64, lda int, b []float64, ldb int, c []float64, ldc int) {
	ar, ac := g.m, g.k
	if g.tA {
		ar, ac = g.k, g.m
	}
	br, bc := g.k, g.n
	if g.tB {
		br, bc = g.n, g.k
	}
	lda, ldb, ldc = ac+g.padA, bc+g.padB, g.n+g.pad
	a = tensor.NewRNG(3, g.String()+"a").NormalTensor(1, ar*lda).Data
	b = tensor.NewRNG(3, g.String()+"b").NormalTensor(1, br*ldb).Data
	c = make([]float64, g.m*ldc)
	for i := range c {
		c[i] = math.NaN() // beta = 0 must overwrite, never read
	}
	return
}

func gemmCases(t testing.TB) []gemmCase {
	var cs []gemmCase
	for _, tt := range [][2]bool{{false, false}, {true, false}, {false, true}} {
		for _, s := range scenario.Cases(t, []struct {
			reason  string
			m, n, k int
		}{
			{"exact tiles, gonum parallel", 192, 256, 512},
			{"ragged m, n and k (k mod 4 = 3, k mod 64 = 7)", 131, 203, 199},
			{"one 64-block of C: gonum serial, whole-k dot", 60, 64, 300},
			{"three 64-blocks of C: still serial", 64, 150, 77},
			{"exactly four blocks: parallel, chunk 64", 128, 128, 66},
			{"k shorter than one group of four", 200, 100, 3},
			{"k = 1", 300, 40, 1},
			{"tall and thin", 1000, 17, 130},
			{"short and wide", 5, 1000, 90},
			{"the attention shape, one head", 512, 512, 64},
			{"several k blocks with a tail", 100, 96, 1100},
		}) {
			cs = append(cs, gemmCase{reason: s.reason, tA: tt[0], tB: tt[1], m: s.m, n: s.n, k: s.k, alpha: 1})
		}
		cs = append(cs,
			gemmCase{reason: "alpha ≠ 1 (attention's scale)", tA: tt[0], tB: tt[1], m: 150, n: 170, k: 130, alpha: 0.125 * math.Pi},
			gemmCase{reason: "strided operands and C", tA: tt[0], tB: tt[1], m: 97, n: 83, k: 129, alpha: 1, padA: 5, padB: 11, pad: 3})
	}
	return cs
}

// TestBlockedGemmMatchesGonum: every product the blocked GEMM takes gives gonum's bits, under
// GOMAXPROCS 1 and 2.
func TestBlockedGemmMatchesGonum(t *testing.T) {
	if !haveKernels {
		t.Skip("no AVX-512: every product goes to gonum")
	}
	defer func(w int) { blkMinWork = w }(blkMinWork)
	blkMinWork = 0 // the tiny-k cases too
	for _, g := range gemmCases(t) {
		a, lda, b, ldb, want, ldc := g.operands()
		gemmGonum(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, 0, want, ldc)
		for _, procs := range []int{1, 2} {
			_, _, _, _, got, _ := g.operands()
			prev := runtime.GOMAXPROCS(procs)
			took := blockedGemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, got, ldc)
			runtime.GOMAXPROCS(prev)
			if !took {
				t.Errorf("%v: the blocked GEMM did not take it", g)
				continue
			}
			if i := firstBitDiff(got, want, g.m, g.n, ldc); i >= 0 {
				t.Errorf("%v GOMAXPROCS=%d: C[%d][%d] = %x, gonum %x", g, procs, i/ldc, i%ldc,
					math.Float64bits(got[i]), math.Float64bits(want[i]))
			}
		}
	}
}

func firstBitDiff(got, want []float64, m, n, ldc int) int {
	for i := 0; i < m; i++ {
		for j := 0; j < n; j++ {
			if math.Float64bits(got[i*ldc+j]) != math.Float64bits(want[i*ldc+j]) {
				return i*ldc + j
			}
		}
	}
	return -1
}

// TestBlockedGemmDeclines: the products whose bits it cannot promise go to gonum untouched —
// a B with Inf or NaN in the axpy order (gonum skips zero multipliers), Aᵀ·Bᵀ, alpha 0, tiny
// products, short slices — and gemm still gives gonum's result for them.
func TestBlockedGemmDeclines(t *testing.T) {
	if !haveKernels {
		t.Skip("no AVX-512")
	}
	base := gemmCase{reason: "decline", m: 100, n: 100, k: 100, alpha: 1}
	for _, c := range scenario.Cases(t, []struct {
		reason string
		g      gemmCase
		edit   func(a, b []float64) ([]float64, []float64)
	}{
		{"Inf in B, axpy order", base, func(a, b []float64) ([]float64, []float64) { b[7] = math.Inf(1); a[0] = 0; return a, b }},
		{"NaN in B, axpy order", base, func(a, b []float64) ([]float64, []float64) { b[250] = math.NaN(); return a, b }},
		{"Aᵀ·Bᵀ", gemmCase{reason: "tt", tA: true, tB: true, m: 100, n: 100, k: 100, alpha: 1}, nil},
		{"alpha 0", gemmCase{reason: "a0", m: 100, n: 100, k: 100}, nil},
		{"below the work threshold", gemmCase{reason: "tiny", m: 8, n: 8, k: 8, alpha: 1}, nil},
		{"short B", base, func(a, b []float64) ([]float64, []float64) { return a, b[:len(b)-1] }},
	}) {
		g := c.g
		a, lda, b, ldb, got, ldc := g.operands()
		if c.edit != nil {
			a, b = c.edit(a, b)
		}
		before := slices.Clone(got)
		if blockedGemm(g.tA, g.tB, g.m, g.n, g.k, g.alpha, a, lda, b, ldb, got, ldc) {
			t.Errorf("%s: taken", c.reason)
		}
		if firstBitDiff(got, before, g.m, g.n, ldc) >= 0 {
			t.Errorf("%s: C written though declined", c.reason)
		}
	}
	// Through gemm, a declined product is gonum's: an Inf in B with a zero in A gives no NaN.
	a, lda, b, ldb, got, ldc := base.operands()
	_, _, _, _, want, _ := base.operands()
	a[0], b[3] = 0, math.Inf(1)
	gemm(false, false, base.m, base.n, base.k, 1, a, lda, b, ldb, 0, got, ldc)
	gemmGonum(false, false, base.m, base.n, base.k, 1, a, lda, b, ldb, 0, want, ldc)
	if i := firstBitDiff(got, want, base.m, base.n, ldc); i >= 0 {
		t.Errorf("gemm with Inf in B: C[%d] = %v, gonum %v", i, got[i], want[i])
	}
}
