package verify_test

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
	vt "github.com/spcheck/spcheck/verify/verifytest"
)

// TestDiagnosis runs the scenario files of testdata/diagnosis: injected divergences, one or more
// per mechanism, each with the one-line explanation of every root that Compare must give.
//
//	compare NAME                    a trace-level scenario (leaf tensors), built by traceScenarios
//	compare-dir REF CAND            two trace directories (e.g. a framework's committed dumps)
//	run plan=PLAN mutate=M[;M…]     the plan on the simulator with its programs mutated, so every
//	                                downstream tensor is a true consequence; M is one of
//	                                drop:ROLE@K      the K-th collective of ROLE (per rank) becomes a copy
//	                                twice:ROLE@K     the K-th collective of ROLE runs twice (reduced twice)
//	                                reverse:ROLE@K   the K-th collective of ROLE gathers in reversed rank order
//	                                scale:OP=c1,c2…  the i-th OP's "scale" attribute times ci (the last repeats)
//
// Each block prints the verdict, the first divergence, the roles, and the sentence of every root.
func TestDiagnosis(t *testing.T) {
	scenario.Run(t, "diagnosis/*.txt", func(t *testing.T, b *scenario.Block) string {
		var rep *verify.Report
		switch b.Cmd {
		case "compare":
			if len(b.Args) != 1 {
				b.Fatalf(t, "compare takes one scenario name")
			}
			build, ok := traceScenarios[b.Args[0]]
			if !ok {
				b.Fatalf(t, "no trace scenario %q", b.Args[0])
			}
			ref, cand, err := build().Traces()
			if err != nil {
				b.Fatalf(t, "%v", err)
			}
			if rep, err = verify.Compare(ref, cand, verify.Options{}); err != nil {
				b.Fatalf(t, "%v", err)
			}
		case "compare-dir":
			if len(b.Args) != 2 {
				b.Fatalf(t, "compare-dir takes a reference and a candidate directory")
			}
			ref, err := trace.OpenDir(b.Args[0])
			if err != nil {
				b.Fatalf(t, "%v", err)
			}
			defer ref.Close()
			cand, err := trace.OpenDir(b.Args[1])
			if err != nil {
				b.Fatalf(t, "%v", err)
			}
			defer cand.Close()
			if rep, err = verify.Compare(ref, cand, verify.Options{}); err != nil {
				b.Fatalf(t, "%v", err)
			}
		case "run":
			ps, _ := b.Arg("plan")
			ms, _ := b.Arg("mutate")
			p, err := plan.Parse(ps)
			if err != nil {
				b.Fatalf(t, "%v", err)
			}
			v, err := mutation(ms)
			if err != nil {
				b.Fatalf(t, "%v", err)
			}
			p.Bug = v.Name
			if rep, err = pipeline.Verify(p, v, verify.Options{}); err != nil {
				b.Fatalf(t, "%v", err)
			}
		default:
			b.Fatalf(t, "unknown command %q", b.Cmd)
		}
		return describe(rep)
	})
}

// describe is a report's verdict, first divergence, roles and root sentences.
func describe(rep *verify.Report) string {
	var s strings.Builder
	if rep.Verified() {
		return "verified\n"
	}
	first := "none"
	if f := rep.First(); len(f) > 0 {
		first = f[0].Name
	}
	roots := rep.Roots()
	fmt.Fprintf(&s, "failed: first divergence %s; %s, %s\n", first, verify.Plural(len(roots), "root"), verify.Plural(rep.Consequences(), "consequence"))
	for _, r := range roots {
		mech, sent := "-", "(no explanation)"
		if x := r.Explanation; x != nil {
			mech, sent = string(x.Mechanism), x.Sentence
		}
		fmt.Fprintf(&s, "%s [%s] %s\n", r.Role, mech, sent)
	}
	return s.String()
}

// mutation builds the variant a run's mutate= argument names.
func mutation(spec string) (*simulate.Variant, error) {
	var steps []func(c *simulate.Compiled) error
	for _, m := range strings.Split(spec, ";") {
		kind, arg, ok := strings.Cut(m, ":")
		if !ok {
			return nil, fmt.Errorf("mutation %q: want KIND:ARG", m)
		}
		switch kind {
		case "drop", "reverse", "twice":
			role, ks, ok := strings.Cut(arg, "@")
			k, err := strconv.Atoi(ks)
			if !ok || err != nil {
				return nil, fmt.Errorf("mutation %q: want %s:ROLE@K", m, kind)
			}
			steps = append(steps, nthCollective(role, k, kind))
		case "scale":
			op, vs, ok := strings.Cut(arg, "=")
			if !ok {
				return nil, fmt.Errorf("mutation %q: want scale:OP=c1,c2", m)
			}
			var cs []float64
			for _, v := range strings.Split(vs, ",") {
				c, err := ratio(v)
				if err != nil {
					return nil, fmt.Errorf("mutation %q: %v", m, err)
				}
				cs = append(cs, c)
			}
			steps = append(steps, scaleOps(op, cs))
		default:
			return nil, fmt.Errorf("mutation %q: unknown kind %q", m, kind)
		}
	}
	return &simulate.Variant{Name: "mutated", Summary: spec, Programs: func(c *simulate.Compiled) error {
		for _, s := range steps {
			if err := s(c); err != nil {
				return err
			}
		}
		return nil
	}}, nil
}

// ratio parses "9/7" or "0.5".
func ratio(s string) (float64, error) {
	if p, q, ok := strings.Cut(s, "/"); ok {
		a, err1 := strconv.ParseFloat(p, 64)
		b, err2 := strconv.ParseFloat(q, 64)
		if err1 != nil || err2 != nil || b == 0 {
			return 0, fmt.Errorf("bad ratio %q", s)
		}
		return a / b, nil
	}
	return strconv.ParseFloat(s, 64)
}

// nthCollective rewrites the k-th op of role in every program: dropped (a copy of its input:
// the collective never ran), run twice on its own result, or with its group's ranks reversed
// (pieces gathered out of order).
func nthCollective(role string, k int, how string) func(c *simulate.Compiled) error {
	return func(c *simulate.Compiled) error {
		found := false
		for _, prog := range c.Programs {
			seen := 0
			ir.Rewrite(prog, func(o ir.Op) ([]ir.Op, bool) {
				if o.Role != role {
					return nil, false
				}
				seen++
				if seen-1 != k {
					return nil, false
				}
				found = true
				switch how {
				case "drop":
					return []ir.Op{{Op: ir.OpCopy, In: o.In[:1], Out: o.Out, Role: o.Role}}, true
				case "twice":
					first, second := o, o
					mid := o.Out[0] + ".once"
					first.Out = []string{mid}
					second.In = append([]string{mid}, o.In[1:]...)
					return []ir.Op{first, second}, true
				}
				g := *o.Group
				g.Ranks = slices.Clone(g.Ranks)
				slices.Reverse(g.Ranks)
				o.Group = &g
				return []ir.Op{o}, true
			})
			ir.StripFrees(prog)
			ir.InsertFrees(prog)
		}
		if !found {
			return fmt.Errorf("no op %d of role %q", k, role)
		}
		return nil
	}
}

// scaleOps multiplies the "scale" attribute of the i-th op named op (per program) by cs[i]
// (the last factor for the rest).
func scaleOps(op string, cs []float64) func(c *simulate.Compiled) error {
	return func(c *simulate.Compiled) error {
		for _, prog := range c.Programs {
			i := 0
			ir.Rewrite(prog, func(o ir.Op) ([]ir.Op, bool) {
				if o.Op != op {
					return nil, false
				}
				f := cs[min(i, len(cs)-1)]
				i++
				fl := map[string]float64{}
				for k, v := range o.Attr.Floats {
					fl[k] = v
				}
				fl["scale"] *= f
				o.Attr.Floats = fl
				return []ir.Op{o}, true
			})
			if i == 0 {
				return fmt.Errorf("no %s op on rank %d", op, prog.Rank)
			}
		}
		return nil
	}
}

var prov = vt.Provenance{Producer: "test", Plan: "tp=2", Seed: 1}
var refProv = vt.Provenance{Producer: "oracle", Plan: "tp=2", Seed: 1}

// ramp is n distinct values, no two rows alike.
func ramp(n int, seed float64) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = math.Sin(seed+float64(i)*0.7) + 0.01*float64(i)
	}
	return v
}

// rows of a [b, s, h] tensor: the slice at positions s0:s1 of every sample, as a [b, s1−s0, h] block.
func seqRows(v []float64, b, s, h, s0, s1 int) []float64 {
	var out []float64
	for i := 0; i < b; i++ {
		out = append(out, v[(i*s+s0)*h:(i*s+s1)*h]...)
	}
	return out
}

// seqShards writes a [b, s, h] activation as tp=shard(1) pieces of cand, piece k from data[k].
func seqShards(cand *vt.Ranks, key string, tm trace.TensorMeta, b, s, h int, data [2][]float64) {
	for k := 0; k < 2; k++ {
		cand.Add(k, key, tm, tensor.F64, []int{b, s / 2, h}, data[k]...)
	}
}

const B, S, H = 2, 8, 4

// traceScenarios are the leaf-tensor divergences, injected into trace files directly.
var traceScenarios = map[string]func() vt.Scenario{
	// The pieces of a sequence all-gather come back in the wrong order: rank 0 holds positions
	// 4:8, rank 1 positions 0:4.
	"seq-pieces-swapped": func() vt.Scenario {
		x := ramp(B*S*H, 1)
		tm := vt.Meta("act/layers.0.attn_norm", trace.Activation, 10, "tp=shard(1)", B, S, H)
		ref := vt.Single("ref", refProv).Add(0, "x", vt.Meta("act/layers.0.attn_norm", trace.Activation, 10, "", B, S, H), tensor.F64, []int{B, S, H}, x...)
		cand := vt.TP("cand", 2, prov)
		seqShards(cand, "x", tm, B, S, H, [2][]float64{seqRows(x, B, S, H, 4, 8), seqRows(x, B, S, H, 0, 4)})
		return vt.Scenario{Name: "seq-pieces-swapped", Ref: ref, Cand: cand}
	},
	// A replicated activation whose positions are reversed in every sample.
	"seq-reversed": func() vt.Scenario {
		x := ramp(B*S*H, 2)
		rev := make([]float64, 0, len(x))
		for i := 0; i < B; i++ {
			for p := S - 1; p >= 0; p-- {
				rev = append(rev, x[(i*S+p)*H:(i*S+p+1)*H]...)
			}
		}
		tm := vt.Meta("act/layers.0.mlp_norm", trace.Activation, 11, "", B, S, H)
		ref := vt.Single("ref", refProv).Add(0, "x", tm, tensor.F64, []int{B, S, H}, x...)
		cand := vt.TP("cand", 2, prov).AddAll("x", tm, tensor.F64, []int{B, S, H}, rev...)
		return vt.Scenario{Name: "seq-reversed", Ref: ref, Cand: cand}
	},
	// Labels shifted by one position too many: every position holds the next one's, the last zero.
	"seq-shifted": func() vt.Scenario {
		x := ramp(B*S*H, 3)
		sh := make([]float64, len(x))
		for i := 0; i < B; i++ {
			copy(sh[i*S*H:(i*S+S-1)*H], x[(i*S+1)*H:(i+1)*S*H])
		}
		tm := vt.Meta("act/mtp.1.embed", trace.Activation, 12, "", B, S, H)
		ref := vt.Single("ref", refProv).Add(0, "x", tm, tensor.F64, []int{B, S, H}, x...)
		cand := vt.TP("cand", 2, prov).AddAll("x", tm, tensor.F64, []int{B, S, H}, sh...)
		return vt.Scenario{Name: "seq-shifted", Ref: ref, Cand: cand}
	},
	// A weight shard stored transposed: each [4, 4] block holds its reference's transpose.
	"block-transposed": func() vt.Scenario {
		w := ramp(8*4, 4)
		tm := vt.Meta("param/layers.0.attn.q.weight", trace.Param, 1, "tp=shard(0)", 8, 4)
		ref := vt.Single("ref", refProv).Add(0, "w", vt.Meta("param/layers.0.attn.q.weight", trace.Param, 1, "", 8, 4), tensor.F64, []int{8, 4}, w...)
		cand := vt.TP("cand", 2, prov)
		for k := 0; k < 2; k++ {
			blk := w[16*k : 16*(k+1)]
			tr := make([]float64, 16)
			for i := 0; i < 4; i++ {
				for j := 0; j < 4; j++ {
					tr[j*4+i] = blk[i*4+j]
				}
			}
			cand.Add(k, "w", tm, tensor.F64, []int{4, 4}, tr...)
		}
		return vt.Scenario{Name: "block-transposed", Ref: ref, Cand: cand}
	},
	// The trace says the weight grad is sharded on dim 0, but every piece holds the dim-1 shard.
	"wrong-shard-dim": func() vt.Scenario {
		g := ramp(4*6, 5)
		ref := vt.Single("ref", refProv).Add(0, "g", vt.Meta("grad/layers.0.mlp.up.weight", trace.ParamGrad, 50, "", 4, 6), tensor.F64, []int{4, 6}, g...)
		tm := vt.Meta("grad/layers.0.mlp.up.weight", trace.ParamGrad, 50, "tp=shard(0)", 4, 6)
		cand := vt.TP("cand", 2, prov)
		for k := 0; k < 2; k++ {
			var col []float64
			for i := 0; i < 4; i++ {
				col = append(col, g[i*6+3*k:i*6+3*k+3]...)
			}
			cand.Add(k, "g", tm, tensor.F64, []int{2, 6}, col...)
		}
		return vt.Scenario{Name: "wrong-shard-dim", Ref: ref, Cand: cand}
	},
	// A constant non-integer factor on the loss and every gradient: the loss normalised by the
	// wrong token count (7 where it should be 9).
	"scale-7-9": func() vt.Scenario {
		a, g := ramp(B*S*H, 6), ramp(4*4, 7)
		sc := func(v []float64) []float64 {
			out := make([]float64, len(v))
			for i, x := range v {
				out[i] = x * 7 / 9
			}
			return out
		}
		ref := vt.Single("ref", refProv).
			Add(0, "a", vt.Meta("agrad/layers.1.output", trace.ActivationGrad, 60, "", B, S, H), tensor.F64, []int{B, S, H}, a...).
			Add(0, "g", vt.Meta("grad/layers.1.mlp.down.weight", trace.ParamGrad, 61, "", 4, 4), tensor.F64, []int{4, 4}, g...)
		cand := vt.TP("cand", 2, prov).
			AddAll("a", vt.Meta("agrad/layers.1.output", trace.ActivationGrad, 60, "", B, S, H), tensor.F64, []int{B, S, H}, sc(a)...).
			AddAll("g", vt.Meta("grad/layers.1.mlp.down.weight", trace.ParamGrad, 61, "", 4, 4), tensor.F64, []int{4, 4}, sc(g)...)
		return vt.Scenario{Name: "scale-7-9", Ref: ref, Cand: cand}
	},
	// A measured factor (no simple ratio) on one rank's shard.
	"scale-measured": func() vt.Scenario {
		g := ramp(8*4, 8)
		bad := slices.Clone(g[16:])
		for i := range bad {
			bad[i] *= 0.7318
		}
		ref := vt.Single("ref", refProv).Add(0, "g", vt.Meta("grad/layers.0.attn.o.weight", trace.ParamGrad, 70, "", 8, 4), tensor.F64, []int{8, 4}, g...)
		tm := vt.Meta("grad/layers.0.attn.o.weight", trace.ParamGrad, 70, "tp=shard(0)", 8, 4)
		cand := vt.TP("cand", 2, prov).Add(0, "g", tm, tensor.F64, []int{4, 4}, g[:16]...).Add(1, "g", tm, tensor.F64, []int{4, 4}, bad...)
		return vt.Scenario{Name: "scale-measured", Ref: ref, Cand: cand}
	},
	// One rank's block ×1.0001: slightly off, nothing lost.
	"precision-one-rank": func() vt.Scenario {
		x := ramp(B*S*H, 9)
		tm := vt.Meta("act/layers.1.mlp.out", trace.Activation, 80, "tp=shard(1)", B, S, H)
		ref := vt.Single("ref", refProv).Add(0, "x", vt.Meta("act/layers.1.mlp.out", trace.Activation, 80, "", B, S, H), tensor.F64, []int{B, S, H}, x...)
		r1 := seqRows(x, B, S, H, 4, 8)
		for i := range r1 {
			r1[i] *= 1.0001
		}
		cand := vt.TP("cand", 2, prov)
		seqShards(cand, "x", tm, B, S, H, [2][]float64{seqRows(x, B, S, H, 0, 4), r1})
		return vt.Scenario{Name: "precision-one-rank", Ref: ref, Cand: cand}
	},
	// Rounding-level noise a few tolerances wide on one rank.
	"precision-noise": func() vt.Scenario {
		x := ramp(B*S*H, 10)
		tm := vt.Meta("act/layers.1.attn.out", trace.Activation, 81, "tp=shard(1)", B, S, H)
		ref := vt.Single("ref", refProv).Add(0, "x", vt.Meta("act/layers.1.attn.out", trace.Activation, 81, "", B, S, H), tensor.F64, []int{B, S, H}, x...)
		r1 := seqRows(x, B, S, H, 4, 8)
		for i := range r1 {
			r1[i] += 3e-10 * math.Cos(float64(i)) * (math.Abs(r1[i]) + 0.5)
		}
		cand := vt.TP("cand", 2, prov)
		seqShards(cand, "x", tm, B, S, H, [2][]float64{seqRows(x, B, S, H, 0, 4), r1})
		return vt.Scenario{Name: "precision-noise", Ref: ref, Cand: cand}
	},
	// A padding row leaks into the tensor: 9 rows where the reference has 8, the last zeros.
	"padding-leak": func() vt.Scenario {
		x := ramp(8*4, 11)
		ref := vt.Single("ref", refProv).Add(0, "x", vt.Meta("act/embed", trace.Activation, 5, "", 8, 4), tensor.F64, []int{8, 4}, x...)
		cand := vt.TP("cand", 2, prov).AddAll("x", vt.Meta("act/embed", trace.Activation, 5, "", 9, 4), tensor.F64, []int{9, 4}, append(slices.Clone(x), 0, 0, 0, 0)...)
		return vt.Scenario{Name: "padding-leak", Ref: ref, Cand: cand}
	},
	// NaN on both sides at the same place: both fail.
	"nan-both": func() vt.Scenario {
		x := ramp(4*4, 12)
		x[6] = math.NaN()
		tm := vt.Meta("act/layers.0.attn.scores", trace.Activation, 20, "", 4, 4)
		ref := vt.Single("ref", refProv).Add(0, "x", tm, tensor.F64, []int{4, 4}, x...)
		cand := vt.TP("cand", 2, prov).AddAll("x", tm, tensor.F64, []int{4, 4}, x...)
		return vt.Scenario{Name: "nan-both", Ref: ref, Cand: cand}
	},
	// Copies of a replicated grad that were never all-reduced: their sum is the reference.
	"unreduced-copies": func() vt.Scenario {
		g := ramp(8, 13)
		p0 := make([]float64, 8)
		p1 := make([]float64, 8)
		for i, v := range g {
			p0[i] = 0.3*v + 0.1*float64(i)
			p1[i] = v - p0[i]
		}
		tm := vt.Meta("grad/final_norm.weight", trace.ParamGrad, 90, "", 8)
		ref := vt.Single("ref", refProv).Add(0, "g", tm, tensor.F64, []int{8}, g...)
		cand := vt.TP("cand", 2, prov).Add(0, "g", tm, tensor.F64, []int{8}, p0...).Add(1, "g", tm, tensor.F64, []int{8}, p1...)
		return vt.Scenario{Name: "unreduced-copies", Ref: ref, Cand: cand}
	},
	// Two independent bugs: a corrupted input (rows of the batch swapped) and, later, a grad
	// ×1/2 on every copy (averaged over tp); an input cannot be a consequence of anything.
	"two-bugs": func() vt.Scenario {
		ids := ramp(2*S, 14)
		swapped := append(slices.Clone(ids[S:]), ids[:S]...)
		g := ramp(16, 15)
		half := make([]float64, len(g))
		for i, v := range g {
			half[i] = v / 2
		}
		ref := vt.Single("ref", refProv).
			Add(0, "g", vt.Meta("grad/layers.0.attn_norm.weight", trace.ParamGrad, 30, "", 16), tensor.F64, []int{16}, g...).
			Add(0, "i", vt.Meta("input/mtp.1.ids", trace.Input, 31, "", 2, S), tensor.F64, []int{2, S}, ids...)
		cand := vt.TP("cand", 2, prov).
			AddAll("g", vt.Meta("grad/layers.0.attn_norm.weight", trace.ParamGrad, 30, "", 16), tensor.F64, []int{16}, half...).
			AddAll("i", vt.Meta("input/mtp.1.ids", trace.Input, 31, "", 2, S), tensor.F64, []int{2, S}, swapped...)
		return vt.Scenario{Name: "two-bugs", Ref: ref, Cand: cand}
	},
	// Every sample of a batch scaled by its own factor (a per-sequence loss normalised by the
	// wrong token count): b0 ×9/7, b1 ×9/2.
	"per-sample": func() vt.Scenario {
		a := ramp(2*S*H, 18)
		c := slices.Clone(a)
		for i := range c {
			c[i] *= []float64{9.0 / 7, 9.0 / 2}[i/(S*H)]
		}
		tm := vt.Meta("agrad/layers.0.output", trace.ActivationGrad, 110, "", 2, S, H)
		ref := vt.Single("ref", refProv).Add(0, "a", tm, tensor.F64, []int{2, S, H}, a...)
		cand := vt.TP("cand", 2, prov).AddAll("a", tm, tensor.F64, []int{2, S, H}, c...)
		return vt.Scenario{Name: "per-sample", Ref: ref, Cand: cand}
	},
	// Micro-batch pieces of an activation grad, scaled per micro-batch (a loss normalised per
	// micro-batch by its own token count: 9/7 on mb0, 9/2 on mb1).
	"per-microbatch": func() vt.Scenario {
		a := ramp(2*S*H, 16)
		mesh := trace.Mesh{Axes: []string{"mb", "tp"}, Shape: []int{2, 2}}
		ref := vt.Single("ref", refProv).Add(0, "a", vt.Meta("agrad/logits", trace.ActivationGrad, 100, "", 2, S, H), tensor.F64, []int{2, S, H}, a...)
		cand := vt.New("cand", mesh, 2, vt.Provenance{Producer: "test", Plan: "tp=2,microbatches=2", Seed: 1})
		for r := 0; r < 2; r++ {
			cand.SetCoord(r, map[string]int{"tp": r})
			for mb, f := range []float64{9.0 / 7, 9.0 / 2} {
				tm := vt.Meta("agrad/logits", trace.ActivationGrad, 100, "mb=shard(0),tp=shard(1)", 2, S, H)
				tm.Coord = map[string]int{"mb": mb}
				piece := seqRows(a[mb*S*H:(mb+1)*S*H], 1, S, H, 4*r, 4*r+4)
				for i := range piece {
					piece[i] *= f
				}
				cand.Add(r, fmt.Sprintf("a@mb%d", mb), tm, tensor.F64, []int{1, S / 2, H}, piece...)
			}
		}
		return vt.Scenario{Name: "per-microbatch", Ref: ref, Cand: cand}
	},
}

// TestDiagnosisNearLinear: matching rows of a large rearranged tensor stays near-linear (sums
// sorted, a bounded probe): a tensor 16× larger takes well under 16² times as long.
func TestDiagnosisNearLinear(t *testing.T) {
	if testing.Short() {
		t.Skip("timing test")
	}
	build := func(s int) (*trace.Trace, *trace.Trace) {
		x := ramp(2*s*64, 17)
		tm := vt.Meta("act/x", trace.Activation, 1, "tp=shard(1)", 2, s, 64)
		ref, _ := vt.Single("ref", refProv).Add(0, "x", vt.Meta("act/x", trace.Activation, 1, "", 2, s, 64), tensor.F64, []int{2, s, 64}, x...).Trace()
		cand := vt.TP("cand", 2, prov)
		seqShards(cand, "x", tm, 2, s, 64, [2][]float64{seqRows(x, 2, s, 64, s/2, s), seqRows(x, 2, s, 64, 0, s/2)})
		c, _ := cand.Trace()
		return ref, c
	}
	var times [2]float64
	for i, s := range []int{256, 4096} {
		ref, cand := build(s)
		best := math.Inf(1)
		for range 3 {
			res := testing.Benchmark(func(b *testing.B) {
				for b.Loop() {
					rep, err := verify.Compare(ref, cand, verify.Options{})
					if err != nil || rep.Results[0].Explanation == nil || rep.Results[0].Explanation.Mechanism != verify.MechRearranged {
						b.Fatalf("not explained as rearranged: %v", err)
					}
				}
			})
			best = min(best, float64(res.NsPerOp()))
		}
		times[i] = best
	}
	if ratio := times[1] / times[0]; ratio > 16*4 {
		t.Errorf("16× the rows took %.0f× as long: matching is not near-linear", ratio)
	}
}
