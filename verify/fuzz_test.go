package verify_test

import (
	"testing"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
	vt "github.com/spcheck/spcheck/verify/verifytest"
)

// FuzzLayout builds two-rank traces with arbitrary placements, global and local shapes and
// coordinates — anything the trace reader accepts — and checks that the verifier never panics:
// it either rebuilds the tensor or returns an error. The seeds run in go test.
func FuzzLayout(f *testing.F) {
	f.Add("tp=shard(0)", 4, 2, 2, 2, 2, 0, 1, uint8(0))
	f.Add("tp=shard(1,block=3)", 2, 5, 2, 3, 3, 0, 1, uint8(1))
	f.Add("tp=partial,mb=shard(0)", 2, 2, 1, 2, 2, 1, 0, uint8(2))
	f.Add("mb=stage,tp=shard(0)", 3, 1, 2, 1, 1, 0, 0, uint8(3))
	f.Add("", 1, 1, 1, 1, 1, 0, 1, uint8(0))
	f.Add("tp=shard(0,segments=2)", 4, 2, 2, 2, 2, 0, 1, uint8(0))
	f.Add("mb=shard(1,segments=2:4),tp=shard(1)", 1, 6, 1, 2, 1, 0, 1, uint8(2))
	f.Add("tp=partial(max)", 2, 2, 2, 2, 2, 0, 1, uint8(0))
	f.Add("tp=partial(avg),mb=partial", 2, 2, 2, 2, 2, 0, 1, uint8(2))
	f.Fuzz(func(t *testing.T, place string, g0, g1, l0, l1, l1b, c0, c1 int, flags uint8) {
		if g0 < 0 || g1 < 0 || l0 < 0 || l1 < 0 || l1b < 0 || g0*g1 > 64 || l0*l1 > 64 || l0*l1b > 64 {
			return
		}
		mesh := trace.Mesh{Axes: []string{"mb", "tp"}, Shape: []int{2, 2}}
		r := vt.New("f", mesh, 2, vt.Provenance{})
		var shape []int
		if flags&1 == 0 {
			shape = []int{g0, g1}
		}
		for rank, l := range [][]int{{l0, l1}, {l0, l1b}} {
			r.SetCoord(rank, map[string]int{"tp": []int{c0, c1}[rank] & 1})
			tm := vt.Meta("x", trace.Activation, 1, place, shape...)
			if flags&2 != 0 {
				tm.Coord = map[string]int{"mb": rank}
			}
			data := make([]float64, l[0]*l[1])
			for i := range data {
				data[i] = float64(i + rank)
			}
			r.Add(rank, "x", tm, tensor.F32, l, data...)
		}
		tr, err := r.Trace()
		if err != nil {
			return // the trace reader refused it: its own fuzz targets cover that
		}
		ls, err := verify.Assemble(tr)
		if err != nil {
			return
		}
		if got, want := len(ls[0].Raw), tensor.Numel(ls[0].Shape)*4; got != want {
			t.Fatalf("rebuilt %d bytes for shape %v", got, ls[0].Shape)
		}
		if _, err := verify.Compare(tr, tr, verify.Options{}); err != nil {
			t.Fatalf("a trace that assembles cannot be compared with itself: %v", err)
		}
	})
}
