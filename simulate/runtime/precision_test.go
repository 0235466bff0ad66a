package runtime

import (
	"math"
	goruntime "runtime"
	"slices"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
)

// TestRoundNormalMatchesTensor: the fast rounding of low-precision runs gives tensor.DType.Round's
// bits for random values over the whole range, ties, binade edges, subnormals and overflow.
func TestRoundNormalMatchesTensor(t *testing.T) {
	rng := tensor.NewRNG(5, "runtime/round")
	vals := []float64{0, math.Copysign(0, -1), 1, -1, 65504, 65520, 65519.99, 0x1.fep127, 0x1.ffp127, 0x1p-126, 0x1p-127, 0x1p-14, 0x1p-15, 0x1p-25,
		1 + 0x1p-8, 1 + 0x1p-9, 1 + 3*0x1p-9, 1 + 0x1p-11, 1 + 3*0x1p-11, math.Inf(1), math.Inf(-1), math.MaxFloat64, 0x1.ffffffffffffp-127}
	for i := uint64(0); i < 200000; i++ {
		m := 2*rng.Uniform(i) - 1
		e := int(rng.Intn(i+1<<40, 300)) - 150
		vals = append(vals, math.Ldexp(m, e))
	}
	for _, d := range []tensor.DType{tensor.BF16, tensor.F16, tensor.F32} {
		got := append([]float64(nil), vals...)
		roundInPlace(got, d)
		for i, v := range vals {
			if want := d.Round(v); math.Float64bits(got[i]) != math.Float64bits(want) {
				t.Fatalf("%s: round(%x) = %x, want %x", d, v, got[i], want)
			}
		}
	}
	nan := []float64{math.NaN()}
	roundInPlace(nan, tensor.BF16)
	if !math.IsNaN(nan[0]) {
		t.Errorf("bf16 rounding of NaN gave %v", nan[0])
	}
}

// TestRingSumRoundsPartials: a bf16 all_reduce over 3 ranks sums chunk j from rank j+1 around
// the ring, rounding every partial sum, so the chunks of one tensor see different orders:
// element 0 adds 2⁻⁸ + 2⁻⁸ first (exact) then 1; elements 1 and 2 start from 1 and lose each
// 2⁻⁸ to the tie-to-even. A float64 run sums in rank order and keeps everything.
func TestRingSumRoundsPartials(t *testing.T) {
	g := &ir.Group{Name: "tp", Ranks: []int{0, 1, 2}}
	vals := func(r int) *tensor.Dense {
		v := 0x1p-8
		if r == 0 {
			v = 1
		}
		return tensor.FromData([]int{3}, []float64{v, v, v})
	}
	progs, init := world(3, vals, func(r int) []ir.Op {
		return []ir.Op{{Op: ir.OpAllReduce, Group: g, In: []string{"x"}, Out: []string{"y"}, Attr: ir.Attrs{Strs: map[string]string{"reduce": "sum"}}}, traceOp("y")}
	})
	for _, c := range scenario.Cases(t, []struct {
		d      tensor.DType
		want   []float64
		reason string
	}{
		{tensor.BF16, []float64{1 + 0x1p-7, 1, 1}, "bf16 partial sums are rounded hop by hop: the small addends vanish on later ranks"},
		{tensor.F64, []float64{1 + 0x1p-7, 1 + 0x1p-7, 1 + 0x1p-7}, "float64 keeps every addend"},
	}) {
		res, err := RunIn(c.d, progs, init)
		if err != nil {
			t.Fatal(err)
		}
		for r := range 3 {
			if got := traced(t, res, r); !slices.Equal(got, c.want) {
				t.Errorf("%s: rank %d got %v, want %v", c.d, r, got, c.want)
			}
		}
	}
}

// TestOpBoundaryRounding: in bf16 a local op's output is rounded to bf16 while RMSNorm's rstd
// stays fp32, and a starting tensor is rounded when loaded ("input/" integers stay exact).
func TestOpBoundaryRounding(t *testing.T) {
	x := tensor.FromData([]int{1, 3}, []float64{1 + 0x1p-10, 2, 3})
	w := tensor.FromData([]int{3}, []float64{1, 1, 1})
	prog := &ir.Program{Format: ir.Format, Version: ir.Version, World: 1, Inputs: []string{"x", "w", "input/ids"}, Ops: []ir.Op{
		{Op: ir.OpRMSNorm, In: []string{"x", "w"}, Out: []string{"y", "rstd"}},
		traceOp("x"), traceOp("y"), traceOp("rstd"), traceOp("input/ids"),
	}}
	init := []map[string]*tensor.Dense{{"x": x, "w": w, "input/ids": tensor.FromData([]int{1}, []float64{300})}}
	res, err := RunIn(tensor.BF16, []*ir.Program{prog}, init)
	if err != nil {
		t.Fatal(err)
	}
	got := res.Traces[0]
	if got[0].T.Data[0] != 1 {
		t.Errorf("x loaded as %v, want 1 (1+2⁻¹⁰ rounded to bf16)", got[0].T.Data[0])
	}
	for _, v := range got[1].T.Data {
		if v != tensor.BF16.Round(v) {
			t.Errorf("rmsnorm output %v is not a bf16 value", v)
		}
	}
	if r := got[2].T.Data[0]; r != float64(float32(r)) || r == tensor.BF16.Round(r) {
		t.Errorf("rstd %v should be an fp32 value that bf16 cannot hold", r)
	}
	if got[3].T.Data[0] != 300 {
		t.Errorf("ids loaded as %v, want 300 (exact)", got[3].T.Data[0])
	}
	if x.Data[0] != 1+0x1p-10 {
		t.Error("loading rounded the caller's init tensor in place")
	}
}

// TestFP32GemmAccumulates: in an fp32 run a linear layer accumulates in fp32, so over a long
// reduction some outputs differ from the exact product rounded once; the result does not
// depend on GOMAXPROCS; a bf16 run rounds the exact product once.
func TestFP32GemmAccumulates(t *testing.T) {
	const n, k, m = 96, 2048, 80
	x := tensor.NewRNG(7, "runtime/x").NormalTensor(1, n, k).RoundAll(tensor.F32)
	w := tensor.NewRNG(8, "runtime/w").NormalTensor(1, m, k).RoundAll(tensor.F32)
	exact := nn.Linear(x, w)
	run := func(procs int) *tensor.Dense {
		defer goruntime.GOMAXPROCS(goruntime.GOMAXPROCS(procs))
		y, err := fp32Kernels[ir.OpLinear]([]*tensor.Dense{x, w}, ir.Attrs{})
		if err != nil {
			t.Fatal(err)
		}
		return y[0]
	}
	one, four := run(1), run(4)
	if !tensor.BitEqual(one, four) {
		t.Fatal("the fp32 GEMM differs between GOMAXPROCS 1 and 4")
	}
	differ := 0
	for i, v := range one.Data {
		if v != float64(float32(exact.Data[i])) {
			differ++
		}
	}
	if differ < len(one.Data)/10 {
		t.Errorf("only %d of %d fp32-accumulated outputs differ from the exact product rounded once: no fp32 accumulation", differ, len(one.Data))
	}
}
