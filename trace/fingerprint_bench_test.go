package trace

import (
	"testing"

	"github.com/spcheck/spcheck/tensor"
)

// BenchmarkComputeFingerprint: one rank's column shard of a [512, 4096] float32 tensor.
func BenchmarkComputeFingerprint(b *testing.B) {
	global := []int{512, 4096}
	local := tensor.NewRNG(1, "b").NormalTensor(1, 512, 2048)
	raw := tensor.Encode(tensor.F32, local.Data)
	p, _ := ParsePlacement("tp=shard(1)")
	mesh := Mesh{Axes: []string{"tp"}, Shape: []int{2}}
	spans, _, _ := PieceSpans(p, mesh, []int{1}, global)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		ComputeFingerprint("act/x", tensor.F32, raw, local.Shape, global, spans, DefaultSamples)
	}
}
