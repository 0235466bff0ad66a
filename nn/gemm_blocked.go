package nn

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// The blocked GEMM: packed panels, register-tiled AVX-512 micro-kernels (gemm_amd64.s) and a
// fixed partition of C into macro tiles shared among GOMAXPROCS goroutines. It returns the
// same bits as gonum's native Dgemm (v0.17, blas/gonum/dgemm.go) on every input it accepts,
// because each element of C is summed in gonum's order, by one goroutine, whatever the tiling
// and the number of workers:
//
//   - op(B) = B (A·B and Aᵀ·B: gonum's dgemmSerialNotNot/TransNot, an axpy per k): c_ij starts
//     at 0 and adds fl(fl(alpha·a_il)·b_lj) for l = 0, 1, …, k−1, one rounding per multiply
//     and per add. gonum skips the update when alpha·a_il is 0; adding ±0 changes nothing to a
//     sum that started at +0 unless b_lj is Inf or NaN, so a B with a non-finite value goes to
//     gonum instead.
//   - A·Bᵀ (dgemmSerialNotTrans, a dot per element): gonum's parallel Dgemm, taken when C has
//     at least 4 blocks of 64×64, cuts k into chunks of 64 and adds alpha·DotUnitary(chunk)
//     to c_ij chunk by chunk; its serial one takes k whole. DotUnitary (internal/asm/f64,
//     dot_amd64.s) keeps four lane sums, position i of the chunk going to lane i mod 4 while a
//     group of four remains and the last len mod 4 positions to lane 0, and returns
//     (s0+s2)+(s1+s3). The dot kernel does exactly this for 16 columns at a time.
//
// Aᵀ·Bᵀ (not used by nn), alpha = 0, beta ≠ 0 and products too small to gain from packing go
// to gonum. TestBlockedGemmMatchesGonum checks the bits on every shape class and edge.

const (
	gonumBlock       = 64 // gonum's blockSize: the k chunk of its parallel Dgemm
	gonumMinParBlock = 4  // gonum's minParBlock: C blocks below which it runs serially
	blkNR            = 16 // tile columns (both kernels)
	blkAxpyMR        = 12 // tile rows of kernAxpy12x16
	blkDotMR         = 3  // tile rows of kernDot3x16
	// Macro tile and k block: one core's throughput is flat within about ±10% from 48×1024 to
	// 768×128 tiles and KC 128 or 256 (measured on the 2-core dev Xeon and one core of a
	// Sapphire Rapids host); 192 rows split attention's 512-token products into three tiles
	// for two cores. KC must be a multiple of gonumBlock so that chunks never straddle k blocks.
	blkMC = 192 // a multiple of both MRs
	blkNC = 512
	blkKC = 256
)

// blkMinWork: below m·n·k = 48³ packing costs more than it saves, and gonum gives the same
// bits. A variable so that tests can send every shape through the kernels.
var blkMinWork = 48 * 48 * 48

var packPool = sync.Pool{New: func() any { return new([]float64) }}

func grow(p *[]float64, n int) []float64 {
	if cap(*p) < n {
		*p = make([]float64, n)
	}
	return (*p)[:n]
}

// blockedGemm sets C = alpha·op(A)·op(B) (beta = 0) and reports true, or leaves C untouched
// and reports false when the product is not one it takes (see above).
func blockedGemm(tA, tB bool, m, n, k int, alpha float64, a []float64, lda int, b []float64, ldb int, c []float64, ldc int) bool {
	if !haveKernels || (tA && tB) || alpha == 0 || m*n*k < blkMinWork {
		return false
	}
	// The kernels take pointers: check the extents gonum would check.
	if !extentOK(tA, m, k, a, lda) || !extentOK(tB, k, n, b, ldb) || !extentOK(false, m, n, c, ldc) {
		return false
	}
	dot := tB
	g := blkGemm{tA: tA, tB: tB, m: m, n: n, k: k, alpha: alpha, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc,
		dot: dot, mr: blkAxpyMR, kcb: blkKC, chunk: gonumBlock}
	if dot {
		g.mr = blkDotMR
		if blocks(m)*blocks(n) < gonumMinParBlock {
			g.kcb, g.chunk = k, k // gonum's serial path: one dot over the whole of k
		}
	}
	g.tilesN = (n + blkNC - 1) / blkNC
	g.nt = (m + blkMC - 1) / blkMC * g.tilesN
	workers := min(runtime.GOMAXPROCS(0), g.nt)
	if !dot {
		var bad atomic.Bool
		parallel(workers, func(w int) { // rows [w·k/workers, (w+1)·k/workers) of B
			if !finiteRows(b[w*k/workers*ldb:], (w+1)*k/workers-w*k/workers, n, ldb) {
				bad.Store(true)
			}
		})
		if bad.Load() {
			return false
		}
	}
	parallel(workers, func(int) { g.work() })
	return true
}

// parallel runs f(0), …, f(workers−1), f(0) on this goroutine, and returns when all are done.
func parallel(workers int, f func(w int)) {
	var wg sync.WaitGroup
	wg.Add(workers - 1)
	for w := 1; w < workers; w++ {
		go func() {
			defer wg.Done()
			f(w)
		}()
	}
	f(0)
	wg.Wait()
}

func blocks(x int) int { return (x + gonumBlock - 1) / gonumBlock }

// extentOK reports whether the r×c matrix (stored transposed when t) fits in x with leading
// dimension ld.
func extentOK(t bool, r, c int, x []float64, ld int) bool {
	if t {
		r, c = c, r
	}
	return ld >= c && len(x) >= (r-1)*ld+c
}

func finiteRows(x []float64, rows, cols, ld int) bool {
	for i := 0; i < rows; i++ {
		for _, v := range x[i*ld : i*ld+cols] {
			if v-v != 0 { // Inf or NaN
				return false
			}
		}
	}
	return true
}

type blkGemm struct {
	tA, tB     bool
	m, n, k    int
	alpha      float64
	a, b, c    []float64
	lda, ldb   int
	ldc        int
	dot        bool
	mr, kcb    int // tile rows; k block
	chunk      int // dot order: gonum's k chunk
	tilesN, nt int
	next       atomic.Int64
}

// work computes macro tiles of C until none is left; tiles are handed out by a counter, and a
// tile's elements are computed by one goroutine over the whole of k, so the split of tiles
// among goroutines never changes a bit.
func (g *blkGemm) work() {
	pa, pb := packPool.Get().(*[]float64), packPool.Get().(*[]float64)
	defer packPool.Put(pa)
	defer packPool.Put(pb)
	kcb := min(g.kcb, g.k)
	ap := grow(pa, blkMC*kcb)
	bp := grow(pb, blkNC*kcb)
	for {
		t := int(g.next.Add(1) - 1)
		if t >= g.nt {
			return
		}
		g.tile(t/g.tilesN*blkMC, t%g.tilesN*blkNC, ap, bp)
	}
}

// tile computes C[ic:ic+MC, jc:jc+NC] over every k block in order.
func (g *blkGemm) tile(ic, jc int, ap, bp []float64) {
	mc, nc := min(blkMC, g.m-ic), min(blkNC, g.n-jc)
	mp, np := (mc+g.mr-1)/g.mr, (nc+blkNR-1)/blkNR
	var edge [blkAxpyMR * blkNR]float64
	for i := ic; i < ic+mc; i++ { // beta = 0: C starts at +0, as gonum's
		clear(g.c[i*g.ldc+jc : i*g.ldc+jc+nc])
	}
	for pc := 0; pc < g.k; pc += g.kcb {
		kc := min(g.kcb, g.k-pc)
		g.packA(ap, ic, mc, pc, kc)
		g.packB(bp, jc, nc, pc, kc)
		for jp := 0; jp < np; jp++ {
			j0, cols := jc+jp*blkNR, min(blkNR, nc-jp*blkNR)
			bpan := &bp[jp*kc*blkNR]
			for ip := 0; ip < mp; ip++ {
				i0, rows := ic+ip*g.mr, min(g.mr, mc-ip*g.mr)
				apan := &ap[ip*kc*g.mr]
				if rows == g.mr && cols == blkNR {
					g.kernel(kc, apan, bpan, &g.c[i0*g.ldc+j0], g.ldc)
					continue
				}
				t := edge[:g.mr*blkNR]
				clear(t)
				for r := 0; r < rows; r++ {
					copy(t[r*blkNR:r*blkNR+cols], g.c[(i0+r)*g.ldc+j0:])
				}
				g.kernel(kc, apan, bpan, &t[0], blkNR)
				for r := 0; r < rows; r++ {
					copy(g.c[(i0+r)*g.ldc+j0:(i0+r)*g.ldc+j0+cols], t[r*blkNR:])
				}
			}
		}
	}
}

func (g *blkGemm) kernel(kc int, a, b, c *float64, ldc int) {
	if g.dot {
		kernDot3x16(kc, g.chunk, a, b, c, ldc, g.alpha)
	} else {
		kernAxpy12x16(kc, a, b, c, ldc)
	}
}

// packA writes rows ic..ic+mc of op(A), k positions pc..pc+kc, as panels of mr rows:
// panel p holds [kc][mr] (rows past m are 0). The axpy order multiplies by alpha here, as
// gonum does before each axpy.
func (g *blkGemm) packA(ap []float64, ic, mc, pc, kc int) {
	mr, lda, a := g.mr, g.lda, g.a
	alpha := g.alpha
	if g.dot {
		alpha = 1 // the dot order applies alpha to each chunk's sum, not here
	}
	mp := (mc + mr - 1) / mr
	for p := 0; p < mp; p++ {
		pan := ap[p*kc*mr : (p+1)*kc*mr]
		i0, rows := ic+p*mr, min(mr, mc-p*mr)
		if g.tA { // A is [k][m]: each k position's rows are contiguous in both
			for l := 0; l < kc; l++ {
				dst := pan[l*mr : (l+1)*mr]
				src := a[(pc+l)*lda+i0 : (pc+l)*lda+i0+rows]
				for r, v := range src {
					dst[r] = alpha * v
				}
				clear(dst[rows:])
			}
			continue
		}
		transposeInto(pan, a[i0*lda+pc:], lda, rows, mr, kc, alpha)
	}
}

// transposeInto writes dst[l*width + r] = alpha·src[r*ld + l] for r < rows, l < kc, and 0 for
// the rows past rows: a block of row-major rows as a [kc][width] panel. Four k positions of a
// row are read at once (multiplying by alpha only when it is not 1, which gives the same bits).
func transposeInto(dst, src []float64, ld, rows, width, kc int, alpha float64) {
	dst = dst[:kc*width]
	if rows < width {
		clear(dst)
	}
	for r := 0; r < rows; r++ {
		row := src[r*ld : r*ld+kc]
		l := 0
		for ; l+4 <= kc; l += 4 {
			x := (*[4]float64)(row[l:])
			d := dst[l*width+r : l*width+r+3*width+1]
			if alpha == 1 {
				d[0], d[width], d[2*width], d[3*width] = x[0], x[1], x[2], x[3]
			} else {
				d[0], d[width], d[2*width], d[3*width] = alpha*x[0], alpha*x[1], alpha*x[2], alpha*x[3]
			}
		}
		for ; l < kc; l++ {
			dst[l*width+r] = alpha * row[l]
		}
	}
}

// packB writes columns jc..jc+nc of op(B), k positions pc..pc+kc, as panels of 16 columns:
// panel p holds [kc][16] (columns past n are 0).
func (g *blkGemm) packB(bp []float64, jc, nc, pc, kc int) {
	np := (nc + blkNR - 1) / blkNR
	for p := 0; p < np; p++ {
		pan := bp[p*kc*blkNR : (p+1)*kc*blkNR]
		j0, cols := jc+p*blkNR, min(blkNR, nc-p*blkNR)
		if g.tB { // B is [n][k]: column j of op(B) is row j of B
			transposeInto(pan, g.b[j0*g.ldb+pc:], g.ldb, cols, blkNR, kc, 1)
			continue
		}
		if cols == blkNR {
			for l := 0; l < kc; l++ {
				o := (pc+l)*g.ldb + j0
				*(*[blkNR]float64)(pan[l*blkNR:]) = *(*[blkNR]float64)(g.b[o : o+blkNR])
			}
			continue
		}
		for l := 0; l < kc; l++ {
			dst := pan[l*blkNR : (l+1)*blkNR]
			n := copy(dst[:cols], g.b[(pc+l)*g.ldb+j0:])
			clear(dst[n:])
		}
	}
}
