package runtime

import (
	"errors"
	"slices"
	"testing"

	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
)

// TestAttentionCuEndsEarly: cu_seqlens ending before the row (flash-attn varlen; seed 003's
// compacted cu_seqlens) leaves the tail unprocessed: zero output, zero probabilities, zero
// gradients; the tokens inside the segments are exactly what the full cu gives them.
func TestAttentionCuEndsEarly(t *testing.T) {
	b, s, h, hd := 2, 6, 2, 2
	rng := tensor.NewRNG(7, "attn")
	mk := func(off int) *tensor.Dense {
		x := tensor.New(b, s, h, hd)
		for i := range x.Data {
			x.Data[i] = rng.Normal(uint64(off + i))
		}
		return x
	}
	q, k, v, dout := mk(0), mk(100), mk(200), mk(300)
	a := ir.Attrs{Ints: map[string][]int{"cu": {0, 2, 4}}}
	out, err := kAttention([]*tensor.Dense{q, k, v}, a)
	if err != nil {
		t.Fatal(err)
	}
	full, _ := nn.Attention(q, k, v, []int{0, 2, 4, 6})
	row := h * hd
	for r := 0; r < b; r++ {
		for i := 0; i < s; i++ {
			got := out[0].Data[(r*s+i)*row : (r*s+i+1)*row]
			want := full.Data[(r*s+i)*row : (r*s+i+1)*row]
			if i >= 4 {
				want = make([]float64, row)
			}
			if !slices.Equal(got, want) {
				t.Errorf("row %d token %d: %v, want %v", r, i, got, want)
			}
		}
	}
	grads, err := kAttentionGrad([]*tensor.Dense{q, k, v, out[1], dout}, a)
	if err != nil {
		t.Fatal(err)
	}
	for gi, g := range grads {
		for r := 0; r < b; r++ {
			for i := 4; i < s; i++ {
				if tail := g.Data[(r*s+i)*row : (r*s+i+1)*row]; slices.ContainsFunc(tail, func(x float64) bool { return x != 0 }) {
					t.Errorf("grad %d row %d token %d: %v, want zeros (never processed)", gi, r, i, tail)
				}
			}
		}
	}
}

// TestKernelErrorNamesOp: a kernel error carries the index of the failing op.
func TestKernelErrorNamesOp(t *testing.T) {
	progs, init := world(1, func(int) *tensor.Dense { return tensor.New(2, 3) }, func(int) []ir.Op {
		return []ir.Op{{Op: ir.OpCopy, In: []string{"x"}, Out: []string{"y"}},
			{Op: ir.OpReshape, In: []string{"y"}, Out: []string{"z"}, Attr: ints1("shape", 7)}}
	})
	_, err := Run(progs, init)
	var e *Error
	if !errors.As(err, &e) || e.Kind != ErrKernel || e.Op != 1 {
		t.Fatalf("got %v (op %d), want a kernel error at op 1", err, e.Op)
	}
}
