//go:build !amd64

package nn

// haveKernels is false off amd64: every product goes to gonum.
const haveKernels = false

func kernAxpy12x16(kc int, a, b, c *float64, ldc int) {
	panic("nn: no GEMM kernels on this architecture")
}

func kernDot3x16(kc, chunk int, a, b, c *float64, ldc int, alpha float64) {
	panic("nn: no GEMM kernels on this architecture")
}
