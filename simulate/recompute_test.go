package simulate

import (
	"bytes"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/simulate/ir"
	simrt "github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/tensor"
)

// TestRecomputeIsBitIdentical: activation recompute of every layer (collectives included,
// under TP, both SP styles, PP and micro-batches) re-runs the forward in the backward and reads
// the recomputed activations, and changes no bit of any traced tensor; the recompute probe
// finds every recomputed activation equal to its forward.
func TestRecomputeIsBitIdentical(t *testing.T) {
	for _, s := range []string{
		"tp=2,pp=2,sp=vllm,microbatches=2,mtp=1,packed=3:5",
		"tp=2,pp=2,sp=megatron,microbatches=2,schedule=gpipe,mtp=2",
		"tp=3,dp=2,batch=2,seq=7,heads=3,hidden=12,ffn=12,mtp=1",
	} {
		p := mustParse(t, s)
		want := traceBytes(t, p)
		c, err := Compile(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		n, err := c.Recompute(func(string) bool { return true }, nil)
		if err != nil || n == 0 {
			t.Fatalf("%s: recomputed %d regions: %v", s, n, err)
		}
		twins := 0
		for _, prog := range c.Programs {
			if err := prog.Validate(); err != nil {
				t.Fatal(err)
			}
			for _, o := range prog.Ops {
				if len(o.Out) > 0 && strings.HasSuffix(o.Out[0], ir.RecomputeSuffix) {
					twins++
				}
			}
		}
		if twins == 0 {
			t.Fatalf("%s: no recomputed op", s)
		}
		res, err := simrt.Run(c.Programs, c.Init)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.TraceFiles(res)
		if err != nil {
			t.Fatal(err)
		}
		for r := range want {
			if !bytes.Equal(got[r], want[r]) {
				t.Errorf("%s rank %d: recompute changed the trace", s, r)
			}
		}
		c.TraceRecomputed()
		res, err = simrt.Run(c.Programs, c.Init)
		if err != nil {
			t.Fatal(err)
		}
		probes := 0
		for _, traced := range res.Traces {
			byKey := map[string]*tensor.Dense{}
			for _, tr := range traced {
				byKey[tr.Tag.Key] = tr.T
			}
			for _, tr := range traced {
				if orig, ok := strings.CutPrefix(tr.Tag.Key, RecomputeTraceKey); ok {
					probes++
					if !tensor.BitEqual(byKey[orig], tr.T) {
						t.Errorf("%s: recomputed %s differs from its forward", s, orig)
					}
				}
			}
		}
		if probes == 0 {
			t.Errorf("%s: the probe traced nothing", s)
		}
	}
}

// TestRecomputeTwiceIsANoOp: once a region's backward reads its recomputed twins, nothing
// reads the originals after the forward, so a second recompute finds nothing to do.
func TestRecomputeTwiceIsANoOp(t *testing.T) {
	c, err := Compile(mustParse(t, "mtp=1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	all := func(string) bool { return true }
	if n, err := c.Recompute(all, nil); err != nil || n == 0 {
		t.Fatalf("first recompute: %d regions, %v", n, err)
	}
	before, _ := c.Programs[0].Marshal()
	if n, err := c.Recompute(all, nil); err != nil || n != 0 {
		t.Errorf("second recompute: %d regions, %v", n, err)
	}
	if after, _ := c.Programs[0].Marshal(); !bytes.Equal(before, after) {
		t.Error("the second recompute changed the program")
	}
}

// TestTPGroupOf reads the TP communicator from a program's mesh, as the planner numbers ranks.
func TestTPGroupOf(t *testing.T) {
	c, err := Compile(mustParse(t, "tp=2,pp=2,dp=2,batch=4"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for r, prog := range c.Programs {
		want := c.l.tpGroup(c.l.coordOf(r))
		if got := TPGroupOf(prog); got.Key() != want.Key() {
			t.Errorf("rank %d: %s, want %s", r, got, want)
		}
	}
	alone := &ir.Program{Rank: 3, Mesh: ir.Mesh{Axes: []string{"pp"}, Shape: []int{4}}}
	if g := TPGroupOf(alone); len(g.Ranks) != 1 || g.Ranks[0] != 3 {
		t.Errorf("no tp axis: %s", g)
	}
}
