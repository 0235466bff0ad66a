package verify_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
	vt "github.com/spcheck/spcheck/verify/verifytest"
)

var noProv = vt.Provenance{}

// global is a deterministic test tensor with integer values (so partial sums are exact).
func global(shape ...int) *tensor.Dense {
	t := tensor.New(shape...)
	rng := tensor.NewRNG(42, "global")
	for i := range t.Data {
		t.Data[i] = float64(rng.Intn(uint64(i), 200) - 100)
	}
	return t
}

// narrowNested cuts t by successive ceil-sized shards of dim d: coordinate c[k] of parts[k],
// outermost first — written independently of the verifier's placement code.
func narrowNested(t *tensor.Dense, d int, parts, c []int) *tensor.Dense {
	for k := range parts {
		lo, hi := tensor.ShardRange(t.Shape[d], parts[k], c[k])
		t = t.Narrow(d, lo, hi-lo)
	}
	return t
}

// TestAssembleRebuildsEveryPlacement: shards placed in any dim, nested, uneven, padded, partial
// sums, micro-batch coordinates and stage-local copies all reassemble to the global tensor.
func TestAssembleRebuildsEveryPlacement(t *testing.T) {
	cases := []struct {
		name   string
		reason string
		want   *tensor.Dense
		build  func(g *tensor.Dense) *vt.Ranks
	}{
		{"uneven dim 0", "ceil-sized shards 4,4,2 of 10 rows", global(10, 3), func(g *tensor.Dense) *vt.Ranks {
			r := vt.TP("t", 3, noProv)
			for c := 0; c < 3; c++ {
				s := narrowNested(g, 0, []int{3}, []int{c})
				r.Add(c, "x", vt.Meta("x", trace.Activation, 1, "tp=shard(0)"), tensor.F64, s.Shape, s.Data...)
			}
			return r
		}},
		{"dim 1 with global shape", "a column shard of an inner dim", global(3, 5), func(g *tensor.Dense) *vt.Ranks {
			r := vt.TP("t", 2, noProv)
			for c := 0; c < 2; c++ {
				s := narrowNested(g, 1, []int{2}, []int{c})
				r.Add(c, "x", vt.Meta("x", trace.Param, 1, "tp=shard(1)", 3, 5), tensor.F32, s.Shape, s.Data...)
			}
			return r
		}},
		{"nested dp then tp", "dp splits dim 0, then tp splits each dp block: 3,2,3,2 rows of 10", global(10, 2), func(g *tensor.Dense) *vt.Ranks {
			r := vt.New("t", trace.Mesh{Axes: []string{"dp", "tp"}, Shape: []int{2, 2}}, 4, noProv)
			for rank := 0; rank < 4; rank++ {
				s := narrowNested(g, 0, []int{2, 2}, []int{rank / 2, rank % 2})
				r.Add(rank, "x", vt.Meta("x", trace.Activation, 1, "dp=shard(0),tp=shard(0)"), tensor.F64, s.Shape, s.Data...)
			}
			return r
		}},
		{"padded blocks", "block=4 shards of 10 rows, the last padded with garbage", global(10), func(g *tensor.Dense) *vt.Ranks {
			r := vt.TP("t", 3, noProv)
			for c := 0; c < 3; c++ {
				lo, hi := min(4*c, 10), min(4*c+4, 10)
				s := g.Narrow(0, lo, hi-lo).Pad(0, 0, 4-(hi-lo), 999)
				r.Add(c, "x", vt.Meta("x", trace.Activation, 1, "tp=shard(0,block=4)", 10), tensor.F64, s.Shape, s.Data...)
			}
			return r
		}},
		{"partial sum", "three integer summands add up exactly", global(2, 3), func(g *tensor.Dense) *vt.Ranks {
			r := vt.TP("t", 3, noProv)
			rest := g.Clone()
			for c := 0; c < 3; c++ {
				s := global(2, 3).Scale(float64(c + 1))
				if c == 2 {
					s = rest
				} else {
					rest.AddInPlace(s.Scale(-1))
				}
				r.Add(c, "x", vt.Meta("x", trace.Activation, 1, "tp=partial"), tensor.F64, s.Shape, s.Data...)
			}
			return r
		}},
		{"micro-batches", "mb is a virtual axis with per-tensor coordinates; batch by mb, hidden by tp", global(4, 6), func(g *tensor.Dense) *vt.Ranks {
			r := vt.New("t", trace.Mesh{Axes: []string{"mb", "tp"}, Shape: []int{2, 2}}, 2, noProv)
			for tp := 0; tp < 2; tp++ {
				r.SetCoord(tp, map[string]int{"tp": tp})
				for mb := 0; mb < 2; mb++ {
					s := narrowNested(narrowNested(g, 0, []int{2}, []int{mb}), 1, []int{2}, []int{tp})
					tm := vt.Meta("x", trace.Activation, 1, "mb=shard(0),tp=shard(1)")
					tm.Coord = map[string]int{"mb": mb}
					r.Add(tp, "x@mb"+string(rune('0'+mb)), tm, tensor.F64, s.Shape, s.Data...)
				}
				// A param grad with no mb coordinate on the same mesh: mb is free for it.
				r.Add(tp, "w", vt.Meta("w", trace.ParamGrad, 2, "tp=shard(0)"), tensor.F64, []int{1}, float64(tp))
			}
			return r
		}},
		{"partial axis before shard axis", "tp=partial summands of mb shards, with tp listed before mb in the mesh (a torchdist dump's layout)", global(4, 3), func(g *tensor.Dense) *vt.Ranks {
			r := vt.New("t", trace.Mesh{Axes: []string{"tp", "mb"}, Shape: []int{2, 2}}, 2, noProv)
			for tp := 0; tp < 2; tp++ {
				r.SetCoord(tp, map[string]int{"tp": tp})
				for mb := 0; mb < 2; mb++ {
					s := narrowNested(g, 0, []int{2}, []int{mb})
					s = s.Scale(0.5) // each TP rank holds half: the halves add up exactly
					tm := vt.Meta("x", trace.Activation, 1, "tp=partial,mb=shard(0)")
					tm.Coord = map[string]int{"mb": mb}
					r.Add(tp, "x@mb"+string(rune('0'+mb)), tm, tensor.F64, s.Shape, s.Data...)
				}
			}
			return r
		}},
		{"strided dp×tp", "FSDP2+TP (_StridedShard(0, split_factor=2) on dp, Shard(0) on tp): tp halves first, dp halves of each", global(8, 3), func(g *tensor.Dense) *vt.Ranks {
			r := vt.New("t", trace.Mesh{Axes: []string{"dp", "tp"}, Shape: []int{2, 2}}, 4, noProv)
			for rank := 0; rank < 4; rank++ {
				s := narrowNested(g, 0, []int{2, 2}, []int{rank % 2, rank / 2}) // tp outermost, then dp
				r.Add(rank, "x", vt.Meta("x", trace.Param, 1, "dp=shard(0,segments=2),tp=shard(0)"), tensor.F64, s.Shape, s.Data...)
			}
			return r
		}},
		{"packed gate_up", "segments=2 on dim 0: each rank holds its half of gate and its half of up, concatenated", global(8, 3), func(g *tensor.Dense) *vt.Ranks {
			r := vt.TP("t", 2, noProv)
			gate, up := g.Narrow(0, 0, 4), g.Narrow(0, 4, 4)
			for c := 0; c < 2; c++ {
				s := tensor.Concat(0, narrowNested(gate, 0, []int{2}, []int{c}), narrowNested(up, 0, []int{2}, []int{c}))
				r.Add(c, "x", vt.Meta("x", trace.Param, 1, "tp=shard(0,segments=2)"), tensor.F64, s.Shape, s.Data...)
			}
			return r
		}},
		{"fused qkv", "segments=8:4:4 on dim 1 (GQA: q has twice k's rows): each rank holds q, k, v chunks", global(2, 16), func(g *tensor.Dense) *vt.Ranks {
			r := vt.TP("t", 2, noProv)
			q, k, v := g.Narrow(1, 0, 8), g.Narrow(1, 8, 4), g.Narrow(1, 12, 4)
			for c := 0; c < 2; c++ {
				s := tensor.Concat(1, narrowNested(q, 1, []int{2}, []int{c}), narrowNested(k, 1, []int{2}, []int{c}), narrowNested(v, 1, []int{2}, []int{c}))
				r.Add(c, "x", vt.Meta("x", trace.Activation, 1, "tp=shard(1,segments=8:4:4)"), tensor.F64, s.Shape, s.Data...)
			}
			return r
		}},
		{"partial avg", "two operands whose mean is the tensor", global(2, 3), func(g *tensor.Dense) *vt.Ranks {
			r := vt.TP("t", 2, noProv)
			a := global(2, 3)
			b := g.Scale(2)
			b.AddInPlace(a.Scale(-1))
			r.Add(0, "x", vt.Meta("x", trace.Activation, 1, "tp=partial(avg)"), tensor.F64, a.Shape, a.Data...)
			r.Add(1, "x", vt.Meta("x", trace.Activation, 1, "tp=partial(avg)"), tensor.F64, b.Shape, b.Data...)
			return r
		}},
		{"partial max", "the element-wise maximum of two operands, one of them below everywhere", global(5), func(g *tensor.Dense) *vt.Ranks {
			r := vt.TP("t", 2, noProv)
			lower := g.Clone()
			for i := range lower.Data {
				lower.Data[i] -= float64(1 + i)
			}
			hi := g.Clone()
			for i := 0; i < 5; i += 2 { // the maximum comes from either rank, element by element
				hi.Data[i], lower.Data[i] = lower.Data[i], hi.Data[i]
			}
			r.Add(0, "x", vt.Meta("x", trace.Activation, 1, "tp=partial(max)"), tensor.F64, []int{5}, hi.Data...)
			r.Add(1, "x", vt.Meta("x", trace.Activation, 1, "tp=partial(max)"), tensor.F64, []int{5}, lower.Data...)
			return r
		}},
		{"partial min", "the element-wise minimum", global(3), func(g *tensor.Dense) *vt.Ranks {
			r := vt.TP("t", 2, noProv)
			above := g.Clone()
			for i := range above.Data {
				above.Data[i] += 7
			}
			r.Add(0, "x", vt.Meta("x", trace.Activation, 1, "tp=partial(min)"), tensor.F64, []int{3}, above.Data...)
			r.Add(1, "x", vt.Meta("x", trace.Activation, 1, "tp=partial(min)"), tensor.F64, []int{3}, g.Data...)
			return r
		}},
		{"stage-local", "held on pp=1 only, sharded over tp, replicated over dp", global(4, 2), func(g *tensor.Dense) *vt.Ranks {
			r := vt.New("t", trace.Mesh{Axes: []string{"dp", "pp", "tp"}, Shape: []int{2, 2, 2}}, 8, noProv)
			for rank := 0; rank < 8; rank++ {
				if rank/2%2 != 1 {
					continue
				}
				s := narrowNested(g, 0, []int{2}, []int{rank % 2})
				r.Add(rank, "x", vt.Meta("x", trace.Param, 1, "pp=stage,tp=shard(0)"), tensor.BF16, s.Shape, s.Data...)
			}
			return r
		}},
	}
	for _, c := range scenario.Cases(t, cases) {
		t.Run(c.name, func(t *testing.T) {
			tr, err := c.build(c.want).Trace()
			if err != nil {
				t.Fatalf("%s: %v", c.reason, err)
			}
			ls, err := verify.Assemble(tr)
			if err != nil {
				t.Fatalf("%s: %v", c.reason, err)
			}
			got := ls[0].Dense()
			if ls[0].Name != "x" || !tensor.BitEqual(got, c.want) {
				t.Errorf("%s: rebuilt %v, want %v", c.reason, got, c.want)
			}
			if len(ls[0].Replicas) != 0 {
				t.Errorf("%s: replica mismatch %+v in a consistent trace", c.reason, ls[0].Replicas)
			}
		})
	}
}

// TestBadTracesNameWhatIsWrong: traces whose pieces cannot make their logical tensors are
// errors naming the file, rank, tensor and field.
func TestBadTracesNameWhatIsWrong(t *testing.T) {
	m := func(place string, shape ...int) trace.TensorMeta {
		return vt.Meta("x", trace.Activation, 1, place, shape...)
	}
	cases := []struct {
		name   string
		reason string
		build  func() *vt.Ranks
		want   []string // substrings of the error
	}{
		{"dtype", "ranks store one tensor in different dtypes", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).Add(0, "x", m("tp=shard(0)"), tensor.F32, []int{2}, 1, 2).Add(1, "x", m("tp=shard(0)"), tensor.BF16, []int{2}, 3, 4)
		}, []string{"bad/rank-00001.safetensors", `"x"`, "field dtype", "rank 1", "BF16"}},
		{"placement", "ranks disagree on the placement", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).Add(0, "x", m("tp=shard(0)"), tensor.F32, []int{2, 2}, 1, 2, 3, 4).Add(1, "x", m("tp=shard(1)"), tensor.F32, []int{2, 2}, 1, 2, 3, 4)
		}, []string{"rank-00001", "field place", "tp=shard(1)", "rank 0 says"}},
		{"global shape", "ranks disagree on the global shape", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).Add(0, "x", m("tp=shard(0)", 4), tensor.F32, []int{2}, 1, 2).Add(1, "x", m("tp=shard(0)", 3), tensor.F32, []int{2}, 3, 4)
		}, []string{"field shape", "global shape [3]", "[4]"}},
		{"missing shard", "rank 1 lacks its shard", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).Add(0, "x", m("tp=shard(0)", 4), tensor.F32, []int{2}, 1, 2).Add(1, "y", vt.Meta("y", trace.Loss, 2, ""), tensor.F32, nil, 0).Add(0, "y", vt.Meta("y", trace.Loss, 2, ""), tensor.F32, nil, 0)
		}, []string{`"x"`, "field place", "no rank holds it at tp=1"}},
		{"missing replica", "a replicated tensor (no placement) held by rank 0 only", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).Add(0, "x", m(""), tensor.F32, []int{2}, 1, 2).Add(1, "y", vt.Meta("y", trace.Loss, 2, ""), tensor.F32, nil, 0).Add(0, "y", vt.Meta("y", trace.Loss, 2, ""), tensor.F32, nil, 0)
		}, []string{"no rank holds it at tp=1", "=stage"}},
		{"local shape", "rank 1 holds 1 row where the placement makes 2", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).Add(0, "x", m("tp=shard(0)", 4, 2), tensor.F32, []int{2, 2}, 1, 2, 3, 4).Add(1, "x", m("tp=shard(0)", 4, 2), tensor.F32, []int{1, 2}, 5, 6)
		}, []string{"rank-00001", "field shape", "rank 1", "local shape [1 2]", "rows [2,4)"}},
		{"inferred shape", "without a global shape, shards 3 and 1 are not what ceil-splitting 4 rows makes", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).Add(0, "x", m("tp=shard(0)"), tensor.F32, []int{3}, 1, 2, 3).Add(1, "x", m("tp=shard(0)"), tensor.F32, []int{1}, 5)
		}, []string{"field shape", "local shape [3]"}},
		{"duplicate claim", "two ranks claim coordinate tp=0", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).SetCoord(1, map[string]int{"tp": 0}).AddAll("x", m("tp=shard(0)", 4), tensor.F32, []int{2}, 1, 2)
		}, []string{"rank-00001", "field coord", "two pieces claim one shard", "tp=0"}},
		{"padded without shape", "padding cannot be stripped without the global shape", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).AddAll("x", m("tp=shard(0,block=2)"), tensor.F32, []int{2}, 1, 2)
		}, []string{"field shape", "must be given"}},
		{"gap", "blocks of 1 row over 2 ranks cannot cover 4 rows", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).AddAll("x", m("tp=shard(0,block=1)", 4), tensor.F32, []int{1}, 1)
		}, []string{"field place", "cover 2 of the 4 elements"}},
		{"no coordinate", "a micro-batch shard without its mb coordinate", func() *vt.Ranks {
			r := vt.New("bad", trace.Mesh{Axes: []string{"mb", "tp"}, Shape: []int{2, 2}}, 2, noProv)
			return r.SetCoord(0, map[string]int{"tp": 0}).SetCoord(1, map[string]int{"tp": 1}).AddAll("x", m("mb=shard(0)"), tensor.F32, []int{2}, 1, 2)
		}, []string{"field coord", "no mb coordinate"}},
		{"overflow", "a global shape whose element count wraps to the stored size", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).AddAll("x", m("tp=shard(0,block=2)", 1<<62+4, 4), tensor.F32, []int{2, 4}, 1, 2, 3, 4, 5, 6, 7, 8)
		}, []string{"field shape", "2^48"}},
		{"segments do not fit", "segments=3:3 of a dim of 4 rows", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).AddAll("x", m("tp=shard(0,segments=3:3)", 4), tensor.F32, []int{2}, 1, 2)
		}, []string{`"x"`, "field place", "add up to 6 rows", "has 4"}},
		{"segmented local shape", "rank 1 holds 3 rows where segments=4:4 over 2 ranks make 4", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).Add(0, "x", m("tp=shard(0,segments=4:4)", 8), tensor.F32, []int{4}, 1, 2, 3, 4).Add(1, "x", m("tp=shard(0,segments=4:4)", 8), tensor.F32, []int{3}, 5, 6, 7)
		}, []string{"rank-00001", "field shape", "rank 1", "rows [2,4)+[6,8) of dim 0"}},
		{"kind", "ranks disagree on the kind", func() *vt.Ranks {
			return vt.TP("bad", 2, noProv).Add(0, "x", m(""), tensor.F32, []int{1}, 1).Add(1, "x", vt.Meta("x", trace.Param, 1, ""), tensor.F32, []int{1}, 1)
		}, []string{"field kind", `"param"`}},
	}
	good, err := vt.Single("good", noProv).Add(0, "x", m(""), tensor.F32, []int{1}, 1).Trace()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range scenario.Cases(t, cases) {
		t.Run(c.name, func(t *testing.T) {
			tr, err := c.build().Trace()
			if err != nil {
				t.Fatalf("%s: the trace reader refused it first: %v", c.reason, err)
			}
			_, err = verify.Compare(good, tr, verify.Options{})
			t.Logf("%s: %v", c.name, err)
			var te *trace.Error
			if !errors.As(err, &te) {
				t.Fatalf("%s: got %v, want a *trace.Error", c.reason, err)
			}
			for _, s := range c.want {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("%s: error %q lacks %q", c.reason, err, s)
				}
			}
			if _, err := verify.Assemble(tr); err == nil {
				t.Errorf("%s: Assemble accepted it", c.reason)
			}
		})
	}
}
