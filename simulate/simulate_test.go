package simulate

import (
	"bytes"
	"errors"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/model"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate/ir"
	simrt "github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

func mustParse(t *testing.T, s string) plan.Plan {
	t.Helper()
	p, err := plan.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// traceBytes compiles and runs p and returns every rank's trace file.
func traceBytes(t *testing.T, p plan.Plan) [][]byte {
	t.Helper()
	c, err := Compile(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := simrt.Run(c.Programs, c.Init)
	if err != nil {
		t.Fatal(err)
	}
	files, err := c.TraceFiles(res)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestDeterministicAcrossGOMAXPROCS: the same plan and seed give byte-identical traces whether
// the ranks' goroutines run on one thread or several.
func TestDeterministicAcrossGOMAXPROCS(t *testing.T) {
	p := mustParse(t, "tp=2,pp=2,dp=2,sp=vllm,microbatches=2,batch=4,mtp=2,packed=3:5,hidden=32,heads=4,ffn=64,seq=8,vocab=37")
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	one := traceBytes(t, p)
	runtime.GOMAXPROCS(max(2, prev))
	many := traceBytes(t, p)
	for r := range one {
		if !bytes.Equal(one[r], many[r]) {
			t.Errorf("rank %d: trace differs between GOMAXPROCS=1 and %d", r, max(2, prev))
		}
	}
}

// rewriteRank rewrites one rank's program with f.
func rewriteRank(c *Compiled, rank int, f func(o ir.Op) ([]ir.Op, bool)) {
	ir.Rewrite(c.Programs[rank], f)
}

// TestMismatchedProgramsFailFast: a pipeline stage that sends where its peer also sends, and a
// TP rank that skips a gradient all-reduce, fail with errors naming ranks, ops and groups, and
// never hang.
func TestMismatchedProgramsFailFast(t *testing.T) {
	p := mustParse(t, "tp=2,pp=2,sp=megatron,microbatches=2,mtp=1")
	cases := []struct {
		reason string
		broken func(c *Compiled)
		kind   string
		want   []string
	}{
		{"stage 1 sends to stage 0 where it should receive, while stage 0 sends to it", func(c *Compiled) {
			done := false
			rewriteRank(c, 2, func(o ir.Op) ([]ir.Op, bool) {
				if done || o.Role != RoleRecvForward {
					return nil, false
				}
				done = true
				recv := o.P2P[0]
				send := ir.Op{Op: ir.OpP2P, Role: "bug.send_instead_of_recv",
					P2P: []ir.Transfer{{Send: true, Peer: recv.Peer, Sym: recv.Sym, Shape: recv.Shape}}}
				zeros := ir.Op{Op: ir.OpZeros, Out: []string{recv.Sym}, Attr: ir.Attrs{Ints: map[string][]int{"shape": recv.Shape}}}
				return []ir.Op{zeros, send}, true
			})
		}, simrt.ErrDeadlock, []string{"ranks 0 and 2 both send to each other and neither receives", "rank 2 waits at op", "bug.send_instead_of_recv"}},
		{"TP rank 1 skips the SP norm-grad all-reduce", func(c *Compiled) {
			done := false
			rewriteRank(c, 1, func(o ir.Op) ([]ir.Op, bool) {
				if done || o.Role != RoleGradTPSum {
					return nil, false
				}
				done = true
				return []ir.Op{{Op: ir.OpCopy, In: o.In, Out: o.Out}}, true
			})
		}, simrt.ErrFinished, []string{"rank 1 finished its program while rank 0 waits for it at op", "all_reduce(sum) tp[0 1]", "(grad.tp_sum)"}},
		{"TP rank 1 all-reduces the embedding where rank 0 reduce-scatters it", func(c *Compiled) {
			done := false
			rewriteRank(c, 1, func(o ir.Op) ([]ir.Op, bool) {
				if done || o.Role != RoleEmbedReduce {
					return nil, false
				}
				done = true
				o.Op, o.Attr = ir.OpAllReduce, ir.Attrs{Strs: map[string]string{"reduce": ir.ReduceSum}}
				return []ir.Op{o}, true
			})
		}, simrt.ErrMismatch, []string{"collective mismatch on group tp[0 1]: the members issued different collectives", "rank 0 op", "reduce_scatter(dim=1) tp[0 1]", "rank 1 op", "all_reduce(sum) tp[0 1]", "(tp.embedding.reduce)"}},
	}
	for _, c := range scenario.Cases(t, cases) {
		synctest.Test(t, func(t *testing.T) {
			comp, err := Compile(p, nil)
			if err != nil {
				t.Fatal(err)
			}
			c.broken(comp)
			_, err = comp.Run()
			var e *simrt.Error
			if !errors.As(err, &e) || e.Kind != c.kind {
				t.Fatalf("%s: got %v, want a %s error", c.reason, err, c.kind)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error does not say %q:\n%v", c.reason, w, err)
				}
			}
		})
	}
}

// TestEmitRoundTrip: programs and starting tensors written with WriteDir and read back with
// ReadDir (what cuda/ will execute) run to the very same trace bytes.
func TestEmitRoundTrip(t *testing.T) {
	p := mustParse(t, "tp=2,pp=2,sp=vllm,microbatches=2,mtp=1,partial_p2p=true,vocab=37,seq=7")
	c, err := Compile(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := c.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	progs, init, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	res, err := simrt.Run(progs, init)
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.TraceFiles(res)
	if err != nil {
		t.Fatal(err)
	}
	want := traceBytes(t, p)
	for r := range want {
		if !bytes.Equal(got[r], want[r]) {
			t.Errorf("rank %d: the emitted programs give a different trace", r)
		}
	}
}

// TestUsePartial: partial P2P only for tensors replicated over TP whose size divides by tp; a
// full send otherwise (the frameworks' fallback and the SP guard).
func TestUsePartial(t *testing.T) {
	on := newLayout(mustParse(t, "tp=2,pp=2,partial_p2p=true"))
	off := newLayout(mustParse(t, "tp=2,pp=2"))
	cases := []struct {
		reason string
		l      *layout
		v      *val
		want   bool
	}{
		{"replicated, 8 elements over 2 ranks", on, &val{shape: []int{1, 2, 4}, pl: rep}, true},
		{"replicated, 15 elements: full-send fallback", on, &val{shape: []int{1, 3, 5}, pl: rep}, false},
		{"a sequence shard differs across TP: the guard", on, &val{shape: []int{1, 2, 4}, pl: shrd, dim: 1}, false},
		{"a partial sum differs across TP", on, &val{shape: []int{1, 2, 4}, pl: part}, false},
		{"the plan does not ask for it", off, &val{shape: []int{1, 2, 4}, pl: rep}, false},
	}
	for _, c := range scenario.Cases(t, cases) {
		if got := newBuilder(c.l, 0).usePartial(c.v); got != c.want {
			t.Errorf("%s: usePartial = %v, want %v", c.reason, got, c.want)
		}
	}
}

// TestVariantMustMatchThePlan: a plan naming a bug compiles only with that bug's variant,
// and a variant compiles only a plan that names it, so a trace's plan string reproduces it.
func TestVariantMustMatchThePlan(t *testing.T) {
	v := &Variant{Name: "simulate-test.noop"}
	for _, c := range scenario.Cases(t, []struct {
		reason string
		plan   string
		v      *Variant
		want   string
	}{
		{"a bug named, no variant given", "bug=simulate-test.noop", nil, "no variant was given"},
		{"a variant given for a plan naming none", "tp=2", v, `the variant given is "simulate-test.noop"`},
		{"another bug's variant", "bug=other", v, `names bug variant "other"`},
	}) {
		if _, err := Compile(mustParse(t, c.plan), c.v); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error containing %q", c.reason, err, c.want)
		}
	}
	c, err := Compile(mustParse(t, "tp=2,bug=simulate-test.noop"), v)
	if err != nil || !strings.Contains(c.Programs[0].Plan, "bug=simulate-test.noop") {
		t.Errorf("the programs do not carry the plan string with its bug: %v", err)
	}
}

// TestScheduleInvariance: GPipe and 1F1B give bit-identical tensors (backwards run in
// micro-batch order under both, so every gradient accumulates in the same order).
func TestScheduleInvariance(t *testing.T) {
	base := "tp=2,pp=3,layers=3,dp=2,batch=8,microbatches=4,sp=megatron,mtp=1,partial_p2p=true"
	a, err := Run(mustParse(t, base+",schedule=gpipe"), nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Run(mustParse(t, base+",schedule=1f1b"), nil)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Compare(a, b, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Count(verify.Identical); n != len(rep.Results) {
		for _, r := range rep.Results {
			if r.Verdict != verify.Identical {
				t.Errorf("%s: %s under 1F1B vs GPipe", r.Name, r.Verdict)
			}
		}
	}
}

// TestEmitGeneratesParams: an emitted plan describes its parameter shards (Generated) instead of
// writing them, whether compiled with Compile or CompileGenerated, and ReadDir generates exactly
// Compile's starting tensors from the descriptions: vocab-padded rows, column shards, replicated
// norms, MTP weights.
func TestEmitGeneratesParams(t *testing.T) {
	p := mustParse(t, "tp=2,pp=2,sp=megatron,mtp=1,vocab=37,seed=9")
	want, err := Compile(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, compile := range []func(plan.Plan, *Variant) (*Compiled, error){Compile, CompileGenerated} {
		c, err := compile(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		if err := c.WriteDir(dir); err != nil {
			t.Fatal(err)
		}
		tr, err := trace.OpenDir(filepath.Join(dir, InitDir))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range tr.Files {
			for _, e := range f.Entries {
				if strings.HasPrefix(e.Key, "param/") {
					t.Errorf("%s: parameter %s written to a file, want generated", f.Path, e.Key)
				}
			}
		}
		tr.Close()
		_, init, err := ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for r := range want.Init {
			if len(init[r]) != len(want.Init[r]) {
				t.Errorf("rank %d: %d starting tensors read back, want %d", r, len(init[r]), len(want.Init[r]))
			}
			for sym, x := range want.Init[r] {
				if y := init[r][sym]; y == nil || !tensor.BitEqual(x, y) {
					t.Errorf("rank %d: %s read back differs from Compile's", r, sym)
				}
			}
		}
	}
}

// TestGeneratedValidate: descriptions that do not fit their shape are refused.
func TestGeneratedValidate(t *testing.T) {
	ok := Generated{Name: "param/x", Shape: []int{4, 6}, Dim: 1, Start: 3, Len: 3, Rule: model.InitRuleOf("x", []int{4, 6})}
	if err := ok.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, c := range scenario.Cases(t, []struct {
		reason string
		edit   func(*Generated)
	}{
		{"rows past the end of the dim", func(g *Generated) { g.Len = 4 }},
		{"a dim the shape lacks", func(g *Generated) { g.Dim = 2 }},
		{"padding on a column shard", func(g *Generated) { g.Pad = 1 }},
		{"no fan-in for a scaled weight", func(g *Generated) { g.Rule.FanIn = 0 }},
	}) {
		g := ok
		g.Shape = slices.Clone(ok.Shape)
		c.edit(&g)
		if g.Validate() == nil {
			t.Errorf("%s: accepted %+v", c.reason, g)
		}
	}
}

// TestWriteDirWithoutGenerated: a Compiled built by hand (no Generated, as bugs' worked
// examples build theirs) is emitted with every starting tensor in init/ and reads back.
func TestWriteDirWithoutGenerated(t *testing.T) {
	c, err := Compile(mustParse(t, "tp=2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	hand := &Compiled{Plan: c.Plan, Programs: c.Programs, Init: c.Init}
	dir := t.TempDir()
	if err := hand.WriteDir(dir); err != nil {
		t.Fatal(err)
	}
	_, init, err := ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for r := range c.Init {
		for sym, x := range c.Init[r] {
			if y := init[r][sym]; y == nil || !tensor.BitEqual(x, y) {
				t.Errorf("rank %d: %s did not round-trip through init/", r, sym)
			}
		}
	}
}
