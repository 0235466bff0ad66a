package nn

import (
	"errors"
	"math"
	"runtime"
	"slices"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/tensor"
)

// closeTol bounds the difference between a result computed whole and the same result
// reassembled from shards: the shard sums add the same terms in a different grouping, so they
// may differ by a few ulps of the operands (float64 ε ≈ 2.2e-16 times a handful of terms).
const closeTol = 1e-12

func assertClose(t *testing.T, reason string, got, want *tensor.Dense) {
	t.Helper()
	if !tensor.SameShape(got.Shape, want.Shape) {
		t.Fatalf("%s: shape %v, want %v", reason, got.Shape, want.Shape)
	}
	for i := range got.Data {
		if d := math.Abs(got.Data[i] - want.Data[i]); d > closeTol*math.Max(1, math.Abs(want.Data[i])) {
			t.Fatalf("%s: element %d is %.17g, want %.17g", reason, i, got.Data[i], want.Data[i])
		}
	}
}

func TestLinearShardsCompose(t *testing.T) {
	x, w := randT("x", 1, 3, 4, 6), randT("w", 1, 8, 6)
	y := Linear(x, w)
	dy := randT("dy", 1, 3, 4, 8)
	dx, dw := LinearBackward(x, w, dy)
	// column-parallel: rows of W → columns of y, partial dx
	cols := w.Chunk(0, 2)
	ys, dws := make([]*tensor.Dense, 2), make([]*tensor.Dense, 2)
	dxSum := tensor.New(x.Shape...)
	for r, wr := range cols {
		ys[r] = Linear(x, wr)
		dyr := dy.Narrow(2, r*4, 4)
		var dxr *tensor.Dense
		dxr, dws[r] = LinearBackward(x, wr, dyr)
		dxSum.AddInPlace(dxr)
	}
	assertClose(t, "column shards concatenated give y", tensor.Concat(2, ys...), y)
	assertClose(t, "column shards' dW concatenated give dW", tensor.Concat(0, dws...), dw)
	assertClose(t, "column shards' partial dx sum to dx", dxSum, dx)
	// row-parallel: columns of W and x → partial y
	ySum := tensor.New(y.Shape...)
	for r := 0; r < 2; r++ {
		ySum.AddInPlace(Linear(x.Narrow(2, r*3, 3), w.Narrow(1, r*3, 3)))
	}
	assertClose(t, "row shards' partial y sum to y", ySum, y)
}

func TestRMSNormRowSubset(t *testing.T) {
	x, w := randT("x", 1, 2, 6, 5), normWeight("w", 5)
	y, rstd := RMSNorm(x, w)
	dy := randT("dy", 1, 2, 6, 5)
	dx, dw := RMSNormBackward(x, w, rstd, dy)
	dwSum := tensor.New(5)
	for r := 0; r < 3; r++ { // sequence-parallel shards of 2 tokens along S
		xs, dys := x.Narrow(1, 2*r, 2), dy.Narrow(1, 2*r, 2)
		ys, rs := RMSNorm(xs, w)
		assertClose(t, "rows normalised alone", ys, y.Narrow(1, 2*r, 2))
		dxs, dws := RMSNormBackward(xs, w, rs, dys)
		assertClose(t, "dx of a row subset", dxs, dx.Narrow(1, 2*r, 2))
		dwSum.AddInPlace(dws)
	}
	assertClose(t, "partial dw of the row shards sum to dw", dwSum, dw)
}

func TestAttentionHeadsAndSegments(t *testing.T) {
	cu := []int{0, 4, 7, 12}
	q, k, v := randT("q", 1, 2, 12, 4, 2), randT("k", 1, 2, 12, 4, 2), randT("v", 1, 2, 12, 4, 2)
	out, _ := Attention(q, k, v, cu)
	// a subset of heads (a TP rank's) gives those heads' output
	qs, ks, vs := q.Narrow(2, 2, 2), k.Narrow(2, 2, 2), v.Narrow(2, 2, 2)
	os, _ := Attention(qs, ks, vs, cu)
	assertClose(t, "heads 2..3 alone", os, out.Narrow(2, 2, 2))
	// every packed sequence equals that sequence run alone
	for i := 1; i < len(cu); i++ {
		lo, n := cu[i-1], cu[i]-cu[i-1]
		o1, _ := Attention(q.Narrow(1, lo, n), k.Narrow(1, lo, n), v.Narrow(1, lo, n), []int{0, n})
		assertClose(t, "packed sequence run alone", o1, out.Narrow(1, lo, n))
	}
	// and attention across the boundary would differ (the check can fail)
	whole, _ := Attention(q, k, v, []int{0, 12})
	if d := math.Abs(whole.At(0, 5, 0, 0) - out.At(0, 5, 0, 0)); d < 1e-6 {
		t.Errorf("attention over one 12-token segment equals the packed one at token 5 (diff %g)", d)
	}
}

func TestEmbeddingVocabShards(t *testing.T) {
	w := randT("w", 1, 7, 3)
	ids := []int{6, 0, 3, 3, 5}
	full := Embedding(ids, w)
	dy := randT("dy", 1, 5, 3)
	dwFull := EmbeddingBackward(ids, dy, 7)
	sum := tensor.New(5, 3)
	var dws []*tensor.Dense
	for r := 0; r < 2; r++ { // ceil shards: rows [0,4) and [4,7)
		lo, hi := tensor.ShardRange(7, 2, r)
		sum.AddInPlace(EmbeddingShard(ids, w.Narrow(0, lo, hi-lo), lo))
		dws = append(dws, EmbeddingShardBackward(ids, dy, hi-lo, lo))
	}
	assertClose(t, "vocab shards' lookups sum to the lookup", sum, full)
	assertClose(t, "vocab shards' grads concatenate to the grad", tensor.Concat(0, dws...), dwFull)
}

// TestRollSequencesSeedExample: lengths 4, 3, 5 packed, the per-sequence roll of depth 1 as
// Megatron-LM #2173 (8c4df6b077, _roll_tensor_packed_seq) rolls each sequence and zeroes its end.
func TestRollSequencesSeedExample(t *testing.T) {
	ids := tensor.FromData([]int{1, 12}, []float64{101, 102, 103, 104, 201, 202, 203, 301, 302, 303, 304, 305})
	cu := []int{0, 4, 7, 12}
	want1 := []float64{102, 103, 104, 0, 202, 203, 0, 302, 303, 304, 305, 0}
	if got := RollSequences(ids, cu, 1, 0); !slices.Equal(got.Data, want1) {
		t.Errorf("depth-1 roll %v, want %v", got.Data, want1)
	}
	twice := RollSequences(RollSequences(ids, cu, 1, 0), cu, 1, 0)
	if got := RollSequences(ids, cu, 2, 0); !slices.Equal(got.Data, twice.Data) {
		t.Errorf("roll by 2 %v differs from rolling by 1 twice %v (Megatron rolls per depth)", got.Data, twice.Data)
	}
	if got, want := Positions(1, cu), []int{0, 1, 2, 3, 0, 1, 2, 0, 1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("positions %v, want %v", got, want)
	}
}

func TestCheckCuSeqlens(t *testing.T) {
	for _, tc := range scenario.Cases(t, []struct {
		reason string
		cu     []int
		ok     bool
	}{
		{"one sequence", []int{0, 12}, true},
		{"the seed's packing", []int{0, 4, 7, 12}, true},
		{"ms-swift author's formula leaves a length-1 tail but still tiles", []int{0, 3, 6, 11, 12}, true},
		{"reviewer's formula ends short of the row", []int{0, 3, 5, 9}, false},
		{"empty sequence", []int{0, 4, 4, 12}, false},
		{"does not start at 0", []int{1, 12}, false},
		{"too short", []int{12}, false},
	}) {
		if err := CheckCuSeqlens(tc.cu, 12); (err == nil) != tc.ok {
			t.Errorf("%s: CheckCuSeqlens(%v) = %v", tc.reason, tc.cu, err)
		}
	}
}

func TestShapeMisusePanics(t *testing.T) {
	for _, tc := range scenario.Cases(t, []struct {
		reason string
		f      func()
	}{
		{"linear weight of the wrong in-dim", func() { Linear(tensor.New(2, 3), tensor.New(4, 5)) }},
		{"norm weight of the wrong size", func() { RMSNorm(tensor.New(2, 3), tensor.New(4)) }},
		{"rope with too few positions", func() { RoPE(tensor.New(1, 2, 1, 4), []int{0}) }},
		{"attention cu not ending at S", func() { Attention(tensor.New(1, 3, 1, 2), tensor.New(1, 3, 1, 2), tensor.New(1, 3, 1, 2), []int{0, 2}) }},
		{"embedding id out of range", func() { Embedding([]int{5}, tensor.New(5, 2)) }},
		{"label out of range", func() { CrossEntropy(tensor.New(1, 3), []int{3}, []float64{1}) }},
	}) {
		func() {
			defer func() {
				var se *ShapeError
				if err, _ := recover().(error); !errors.As(err, &se) {
					t.Errorf("%s: recovered %v, want a *nn.ShapeError", tc.reason, err)
				}
			}()
			tc.f()
		}()
	}
}

// TestGemmGOMAXPROCS checks the determinism the oracle relies on: gonum's Dgemm gives the same
// bits with 1 and 4 workers at sizes where it takes its parallel path (≥ 4 blocks of 64).
func TestGemmGOMAXPROCS(t *testing.T) {
	a, b := randT("a", 1, 300, 257), randT("b", 1, 200, 257)
	run := func(procs int) *tensor.Dense {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		return Linear(a, b)
	}
	one, four := run(1), run(4)
	if !tensor.BitEqual(one, four) {
		t.Fatal("Linear [300,257]×[200,257]ᵀ differs between GOMAXPROCS=1 and 4")
	}
}

// TestCrossEntropyVocabShards composes the vocab-parallel pieces over two shards (as the MAX
// and SUM all-reduces would) and compares with the full cross-entropy and its backward.
func TestCrossEntropyVocabShards(t *testing.T) {
	logits := randT("z", 2, 5, 7)
	labels := []int{6, IgnoreIndex, 0, 3, 4}
	tokens := TokenCrossEntropy(logits, labels)
	coef := []float64{0.5, 0.5, 0, 0.25, 1}
	full := CrossEntropyShardBackward(logits, labels, 0, RowMax(logits), RowSumExp(logits, RowMax(logits)), coef)
	shards := logits.Chunk(1, 2) // columns [0,4) and [4,7)
	starts := []int{0, 4}
	m := make([]float64, 5)
	for i := range m {
		m[i] = math.Inf(-1)
	}
	for _, sh := range shards {
		for i, x := range RowMax(sh) {
			m[i] = math.Max(m[i], x)
		}
	}
	s, target := make([]float64, 5), make([]float64, 5)
	for r, sh := range shards {
		for i, x := range RowSumExp(sh, m) {
			s[i] += x
		}
		for i, x := range TargetLogits(sh, labels, starts[r]) {
			target[i] += x
		}
	}
	got := TokenCrossEntropyFromParts(m, s, target, labels)
	assertClose(t, "per-token losses from vocab shards", tensor.FromData([]int{5}, got), tensor.FromData([]int{5}, tokens))
	var parts []*tensor.Dense
	for r, sh := range shards {
		parts = append(parts, CrossEntropyShardBackward(sh, labels, starts[r], m, s, coef))
	}
	assertClose(t, "dlogits from vocab shards", tensor.Concat(1, parts...), full)
}
