package verify

import (
	"math"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/tensor"
)

// TestHasNonFinite: the word-at-a-time scan finds NaN and ±Inf at every position of every float
// dtype (tails included), and nothing in finite data, the largest finite values included.
func TestHasNonFinite(t *testing.T) {
	cases := []struct {
		dt     tensor.DType
		reason string
	}{
		{tensor.F64, "8-byte lanes"}, {tensor.F32, "two lanes a word"}, {tensor.BF16, "four lanes, bf16 exponent"}, {tensor.F16, "four lanes, fp16 exponent"},
	}
	for _, c := range scenario.Cases(t, cases) {
		for n := 1; n <= 13; n++ {
			finite := make([]float64, n)
			for i := range finite {
				finite[i] = math.Pow(-2, float64(i%9)) * 1.5
			}
			finite[n-1] = map[tensor.DType]float64{tensor.F64: math.MaxFloat64, tensor.F32: math.MaxFloat32, tensor.BF16: 3.3e38, tensor.F16: 65504}[c.dt]
			if hasNonFinite(c.dt, tensor.Encode(c.dt, finite)) {
				t.Errorf("%s (%s), %d values: finite data reported non-finite", c.dt, c.reason, n)
			}
			for at := 0; at < n; at++ {
				for _, bad := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
					v := append([]float64{}, finite...)
					v[at] = bad
					if !hasNonFinite(c.dt, tensor.Encode(c.dt, v)) {
						t.Errorf("%s (%s): %v at %d of %d missed", c.dt, c.reason, bad, at, n)
					}
				}
			}
		}
	}
}
