//go:build amd64

package nn

import "golang.org/x/sys/cpu"

//go:generate go run ./internal/gemmgen

// haveKernels: the blocked GEMM's micro-kernels need AVX-512 (cpu.X86.HasAVX512F also checks
// that the OS saves the zmm state). Without it every product goes to gonum, with the same bits.
var haveKernels = cpu.X86.HasAVX512F

// kernAxpy12x16 adds a[l][r]·b[l][0:16] to row r of the 12×16 tile at c (rows ldc apart) for
// l = 0..kc-1 in order: a is a packed [kc][12] panel, b a packed [kc][16] panel.
//
//go:noescape
func kernAxpy12x16(kc int, a, b, c *float64, ldc int)

// kernDot3x16 adds alpha·(a[:,r] · b[:,j]) to the 3×16 tile at c chunk by chunk, in the order
// of gonum's DotUnitary (four lane sums, the tail on lane 0, (s0+s2)+(s1+s3)).
//
//go:noescape
func kernDot3x16(kc, chunk int, a, b, c *float64, ldc int, alpha float64)
