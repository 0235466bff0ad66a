// Command gemmgen writes nn/gemm_amd64.s, the AVX-512 micro-kernels of nn's blocked GEMM
// (nn/gemm_blocked.go): `go generate ./nn` runs it. The kernels are unrolled over the tile's
// rows, so they are generated rather than written by hand.
//
// Both kernels keep gonum's summation order for every output element (see gemm_blocked.go):
// each product is rounded (VMULPD) before it is added (VADDPD) — never a fused multiply-add —
// and the adds happen in the order gonum's Dgemm performs them.
package main

import (
	"fmt"
	"os"
	"strings"
)

const (
	axpyMR = 12 // rows of the axpy-order tile (two zmm = 16 columns each)
	dotMR  = 3  // rows of the dot-order tile (two zmm × four lane sums each)
)

type gen struct{ strings.Builder }

func (g *gen) f(format string, args ...any) { fmt.Fprintf(&g.Builder, format+"\n", args...) }

// eachRow emits row(r) for the tile's n rows of C, R9 pointing at row r (R8 = ldc in bytes).
func (g *gen) eachRow(n int, row func(r int)) {
	g.f("\tMOVQ DX, R9")
	for r := 0; r < n; r++ {
		row(r)
		if r < n-1 {
			g.f("\tADDQ R8, R9")
		}
	}
}

// step emits one k position: the B row (16 columns) into Z24, Z25, then for each of the n
// rows the broadcast A value times it, added to acc(r, 0) and acc(r, 1); then it advances the
// panels (SI: A, n values per position; DI: B, 16).
func (g *gen) step(n int, acc func(r, v int) int) {
	g.f("\tVMOVUPD (DI), Z24")
	g.f("\tVMOVUPD 64(DI), Z25")
	for r := 0; r < n; r++ {
		g.f("\tVBROADCASTSD %d(SI), Z26", 8*r)
		g.f("\tVMULPD Z24, Z26, Z27")
		g.f("\tVADDPD Z27, Z%d, Z%d", acc(r, 0), acc(r, 0))
		g.f("\tVMULPD Z25, Z26, Z28")
		g.f("\tVADDPD Z28, Z%d, Z%d", acc(r, 1), acc(r, 1))
	}
	g.f("\tADDQ $%d, SI", 8*n)
	g.f("\tADDQ $128, DI")
}

// axpy: kernAxpy12x16(kc int, a, b, c *float64, ldc int)
//
// C[r][0:16] = C[r][0:16] + a[l][r]·b[l][0:16] for l = 0..kc-1 in order, a = the packed
// (already alpha-scaled) A panel [kc][12], b = the packed B panel [kc][16], C rows ldc apart.
// Accumulators Z0..Z23 (row r: Z(2r), Z(2r+1)); Z24, Z25 the B row; Z26 the broadcast;
// Z27, Z28 products.
func (g *gen) axpy() {
	g.f("// func kernAxpy12x16(kc int, a, b, c *float64, ldc int)")
	g.f("TEXT ·kernAxpy12x16(SB), NOSPLIT, $0-40")
	g.f("\tMOVQ kc+0(FP), CX")
	g.f("\tMOVQ a+8(FP), SI")
	g.f("\tMOVQ b+16(FP), DI")
	g.f("\tMOVQ c+24(FP), DX")
	g.f("\tMOVQ ldc+32(FP), R8")
	g.f("\tSHLQ $3, R8")
	g.eachRow(axpyMR, func(r int) {
		g.f("\tVMOVUPD (R9), Z%d", 2*r)
		g.f("\tVMOVUPD 64(R9), Z%d", 2*r+1)
	})
	g.f("\tTESTQ CX, CX")
	g.f("\tJE axpy_store")
	g.f("axpy_loop:")
	g.step(axpyMR, func(r, v int) int { return 2*r + v })
	g.f("\tDECQ CX")
	g.f("\tJNZ axpy_loop")
	g.f("axpy_store:")
	g.eachRow(axpyMR, func(r int) {
		g.f("\tVMOVUPD Z%d, (R9)", 2*r)
		g.f("\tVMOVUPD Z%d, 64(R9)", 2*r+1)
	})
	g.f("\tVZEROUPPER")
	g.f("\tRET")
	g.f("")
}

// dot: kernDot3x16(kc, chunk int, a, b, c *float64, ldc int, alpha float64)
//
// gonum's DotUnitary order, 16 output columns at a time: within each chunk of `chunk` k
// positions (the last may be shorter), position l of the chunk goes to lane sum l mod 4 while
// at least four positions remain in the group, the last len mod 4 positions go to lane 0; then
// d = (s0+s2) + (s1+s3) and C = C + alpha·d, and the lane sums restart from zero.
// Lane sum u of row r, column half v: Z(u*6 + 2r + v). Z24, Z25 the B row; Z26 the broadcast;
// Z27, Z28 products; Z29 alpha.
func (g *gen) dot() {
	acc := func(u, r, v int) int { return u*2*dotMR + 2*r + v }
	lane := func(u int) func(r, v int) int { return func(r, v int) int { return acc(u, r, v) } }
	g.f("// func kernDot3x16(kc, chunk int, a, b, c *float64, ldc int, alpha float64)")
	g.f("TEXT ·kernDot3x16(SB), NOSPLIT, $0-56")
	g.f("\tMOVQ kc+0(FP), CX")
	g.f("\tMOVQ a+16(FP), SI")
	g.f("\tMOVQ b+24(FP), DI")
	g.f("\tMOVQ c+32(FP), DX")
	g.f("\tMOVQ ldc+40(FP), R8")
	g.f("\tSHLQ $3, R8")
	g.f("\tVBROADCASTSD alpha+48(FP), Z29")
	g.f("dot_chunk:")
	g.f("\tTESTQ CX, CX")
	g.f("\tJLE dot_done")
	for i := 0; i < 4*2*dotMR; i++ {
		g.f("\tVPXORQ Z%d, Z%d, Z%d", i, i, i)
	}
	g.f("\tMOVQ chunk+8(FP), BX")
	g.f("\tCMPQ BX, CX")
	g.f("\tCMOVQGT CX, BX") // n = min(chunk, remaining)
	g.f("\tSUBQ BX, CX")
	g.f("\tMOVQ BX, R10")
	g.f("\tSHRQ $2, R10") // groups of four
	g.f("\tANDQ $3, BX")  // tail
	g.f("\tTESTQ R10, R10")
	g.f("\tJE dot_tail")
	g.f("dot_group:")
	for u := 0; u < 4; u++ {
		g.step(dotMR, lane(u))
	}
	g.f("\tDECQ R10")
	g.f("\tJNZ dot_group")
	g.f("dot_tail:")
	g.f("\tTESTQ BX, BX")
	g.f("\tJE dot_flush")
	g.step(dotMR, lane(0))
	g.f("\tDECQ BX")
	g.f("\tJMP dot_tail")
	g.f("dot_flush:")
	g.eachRow(dotMR, func(r int) {
		for v := 0; v < 2; v++ {
			g.f("\tVADDPD Z%d, Z%d, Z24", acc(2, r, v), acc(0, r, v))
			g.f("\tVADDPD Z%d, Z%d, Z25", acc(3, r, v), acc(1, r, v))
			g.f("\tVADDPD Z25, Z24, Z24")
			g.f("\tVMULPD Z29, Z24, Z24")
			g.f("\tVADDPD %d(R9), Z24, Z24", 64*v)
			g.f("\tVMOVUPD Z24, %d(R9)", 64*v)
		}
	})
	g.f("\tJMP dot_chunk")
	g.f("dot_done:")
	g.f("\tVZEROUPPER")
	g.f("\tRET")
}

func main() {
	var g gen
	g.f("// Code generated by nn/internal/gemmgen; DO NOT EDIT.")
	g.f("")
	g.f("//go:build amd64")
	g.f("")
	g.f("#include \"textflag.h\"")
	g.f("")
	g.axpy()
	g.dot()
	if err := os.WriteFile("gemm_amd64.s", []byte(g.String()), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
