package nn

import (
	"fmt"

	"github.com/spcheck/spcheck/tensor"
)

// Packed sequences. Every batch row of S tokens holds the same sequences, given by cu_seqlens
// cu = [0, l0, l0+l1, …, S] (plan.Model.CuSeqlens); an unpacked row is cu = [0, S].

// CheckCuSeqlens reports whether cu describes sequences tiling [0, S): it starts at 0, ends at
// S and strictly increases (no empty sequence).
func CheckCuSeqlens(cu []int, s int) error {
	if len(cu) < 2 || cu[0] != 0 || cu[len(cu)-1] != s {
		return fmt.Errorf("cu_seqlens %v must run from 0 to the row length %d", cu, s)
	}
	for i := 1; i < len(cu); i++ {
		if cu[i] <= cu[i-1] {
			return fmt.Errorf("cu_seqlens %v must strictly increase (no empty sequence)", cu)
		}
	}
	return nil
}

func mustCu(op string, cu []int, s int) {
	if err := CheckCuSeqlens(cu, s); err != nil {
		shapePanic(op, "%v", err)
	}
}

// SeqEnds returns, for every position of a row, the end (exclusive) of the sequence holding it.
func SeqEnds(cu []int) []int {
	ends := make([]int, cu[len(cu)-1])
	for i := 1; i < len(cu); i++ {
		for p := cu[i-1]; p < cu[i]; p++ {
			ends[p] = cu[i]
		}
	}
	return ends
}

// Positions returns the RoPE position of every token of b rows: its offset inside its own
// sequence, restarting at 0 at every cu boundary (flattened [b·S]).
func Positions(b int, cu []int) []int {
	s := cu[len(cu)-1]
	mustCu("Positions", cu, s)
	pos := make([]int, 0, b*s)
	for r := 0; r < b; r++ {
		for i := 1; i < len(cu); i++ {
			for p := cu[i-1]; p < cu[i]; p++ {
				pos = append(pos, p-cu[i-1])
			}
		}
	}
	return pos
}

// RollSequences returns x [B,S] shifted left by k inside every sequence:
// y[b,i] = x[b,i+k] when i+k is in i's sequence, else fill. This is Megatron-LM's per-sequence
// roll_tensor(shifts=-1) with its zero fill applied k times (MTP depth k rolls what depth k−1
// received), written as one shift.
func RollSequences(x *tensor.Dense, cu []int, k int, fill float64) *tensor.Dense {
	if len(x.Shape) != 2 {
		shapePanic("RollSequences", "want [B,S], got %v", x.Shape)
	}
	b, s := x.Shape[0], x.Shape[1]
	mustCu("RollSequences", cu, s)
	if k < 0 {
		shapePanic("RollSequences", "negative shift %d", k)
	}
	ends := SeqEnds(cu)
	y := tensor.New(b, s)
	for r := 0; r < b; r++ {
		for i := 0; i < s; i++ {
			v := fill
			if i+k < ends[i] {
				v = x.Data[r*s+i+k]
			}
			y.Data[r*s+i] = v
		}
	}
	return y
}
