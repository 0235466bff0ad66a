package gputraces

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"path/filepath"
	"slices"
	"testing"

	scenariofile "github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/simulate/ir"
	simrt "github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// goldenDir holds the files the C++ tests read.
const goldenDir = "../tests/testdata"

// checkGolden compares want with the committed file (or rewrites it under -rewrite); a stale
// file means the Go source of truth changed: rewrite it and re-run make -C cuda test.
func checkGolden(t *testing.T, name string, want []byte) {
	t.Helper()
	scenariofile.Golden(t, filepath.Join(goldenDir, name), want)
}

func hex64(x float64) string { return fmt.Sprintf("%016x", math.Float64bits(x)) }

// hostGolden is what cuda/tests/host_test.cpp checks the C++ ports against.
type hostGolden struct {
	RNG  []rngCase  `json:"rng"`
	BF16 []bitsCase `json:"bf16"`
	F16  []bitsCase `json:"f16"`
}

type rngCase struct {
	Seed    uint64 `json:"seed"`
	Name    string `json:"name"`
	I       uint64 `json:"i"`
	Bits    string `json:"bits"`
	Uniform string `json:"uniform"`
	Normal  string `json:"normal"`
	N       int    `json:"n"`
	Intn    int    `json:"intn"`
}

type bitsCase struct {
	X    string `json:"x"` // float64 bits, hex
	Bits uint16 `json:"bits"`
}

// roundingInputs are float64 values that exercise RNE: exact ties, values just off a tie that
// a float32 detour would round twice, the subnormal range, overflow, signed zeros, NaN.
func roundingInputs() []float64 {
	xs := []float64{0, math.Copysign(0, -1), 1, -1, 1 + 0x1p-8, 1 + 3*0x1p-8, 1 + 0x1p-8 + 0x1p-30, 1 + 0x1p-8 - 0x1p-40,
		1 + 0x1p-11, 1 + 0x1p-11 + 0x1p-40, 65504, 65520, 65519.99, 0x1.fep127, 0x1.ffp127, 0x1.fefffffp127, 1e39, -1e39,
		0x1p-126, 0x1p-130, 0x1.8p-133, 0x1p-134, 0x1p-150, 0x1p-14, 0x1p-24, 0x1p-25, 0x1.8p-24, 0x1p-26, 3.14159265358979,
		-2.718281828459045, 1e-8, 6.1e-5, math.Inf(1), math.Inf(-1), math.NaN(), -math.NaN()}
	r := tensor.NewRNG(7, "rounding")
	for i := range 200 {
		// Random mantissas over a wide exponent range.
		xs = append(xs, (r.Uniform(uint64(2*i))-0.5)*math.Ldexp(1, int(r.Intn(uint64(2*i+1), 80))-40))
	}
	return xs
}

func buildHostGolden() []byte {
	var g hostGolden
	names := []string{"", "param/layers.0.attn.q.weight", "input/tokens", "ünïcode"}
	for si, seed := range []uint64{0, 1, 42, 1<<64 - 1} {
		for ni, name := range names {
			r := tensor.NewRNG(seed, name)
			for _, i := range []uint64{0, 1, 2, 3, 1000, 1 << 40, uint64(si*131 + ni*17)} {
				n := 1 + int(i%97)
				g.RNG = append(g.RNG, rngCase{Seed: seed, Name: name, I: i, Bits: fmt.Sprintf("%016x", r.Bits(i)),
					Uniform: hex64(r.Uniform(i)), Normal: hex64(r.Normal(i)), N: n, Intn: r.Intn(i, n)})
			}
		}
	}
	// Many normals of one stream: log and cos over their whole input range.
	r := tensor.NewRNG(1, "many")
	for i := uint64(0); i < 600; i++ {
		g.RNG = append(g.RNG, rngCase{Seed: 1, Name: "many", I: i, Bits: fmt.Sprintf("%016x", r.Bits(i)),
			Uniform: hex64(r.Uniform(i)), Normal: hex64(r.Normal(i)), N: 1000, Intn: r.Intn(i, 1000)})
	}
	for _, x := range roundingInputs() {
		g.BF16 = append(g.BF16, bitsCase{X: hex64(x), Bits: tensor.BF16Bits(x)})
		g.F16 = append(g.F16, bitsCase{X: hex64(x), Bits: tensor.F16Bits(x)})
	}
	b, err := json.MarshalIndent(g, "", " ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func TestHostGolden(t *testing.T) { checkGolden(t, "host_golden.json", buildHostGolden()) }

// buildTraceGolden is a trace file written by Go's trace.Writer with awkward metadata (HTML
// characters, unicode, coords, extra); the C++ writer must reproduce it byte for byte.
func buildTraceGolden() []byte {
	w := trace.NewWriter(trace.Meta{Rank: 1, World: 4, Mesh: trace.Mesh{Axes: []string{"pp", "tp"}, Shape: []int{2, 2}},
		Coord: map[string]int{"pp": 0, "tp": 1}, Producer: "cuda", Plan: "tp=2,pp=2,sp=megatron", Seed: 1<<63 + 5,
		Extra: map[string]string{"device": "NVIDIA H200 <x> & \"y\"", "nccl": "2.28.3", "note": "tab\there\nline ü"}})
	r := tensor.NewRNG(3, "golden")
	add := func(key string, tm trace.TensorMeta, d tensor.DType, shape ...int) {
		if err := w.Add(key, tm, d, r.NormalTensor(1, shape...)); err != nil {
			panic(err)
		}
	}
	add("w_q", trace.TensorMeta{Name: "param/layers.1.attn.q.weight", Kind: trace.Param, Order: 17, Place: "tp=shard(0),pp=stage", Shape: []int{8, 4}}, tensor.BF16, 4, 4)
	add("h@mb1", trace.TensorMeta{Name: "act/layers.1.output", Kind: trace.Activation, Order: 40, Place: "tp=shard(1,block=3)", Shape: []int{2, 5, 4}, Coord: map[string]int{"pp": 1}}, tensor.F32, 2, 3, 4)
	add("loss", trace.TensorMeta{Name: "loss/main", Kind: trace.Loss, Order: 99}, tensor.F64)
	add("ids", trace.TensorMeta{Name: "input/tokens", Kind: trace.Input, Order: 0}, tensor.I64, 2, 3)
	add("e", trace.TensorMeta{Name: "act/empty", Kind: trace.Activation, Order: 41, Place: "tp=partial"}, tensor.F16, 0, 3)
	b, err := w.Bytes()
	if err != nil {
		panic(err)
	}
	return b
}

func TestTraceGolden(t *testing.T) {
	b := buildTraceGolden()
	if _, err := trace.Read(bytes.NewReader(b), int64(len(b)), "golden"); err != nil {
		t.Fatalf("the golden trace does not read back: %v", err)
	}
	checkGolden(t, "trace_golden.safetensors", b)
}

// buildKernelGolden evaluates nn's kernels (float64) on small random inputs; the CUDA kernel
// test runs the same inputs in fp32 and bf16 and compares. Keys: "<op>.<tensor>".
func buildKernelGolden() []byte {
	w := trace.NewWriter(trace.Meta{Rank: 0, World: 1, Mesh: trace.Mesh{Axes: []string{}, Shape: []int{}}, Producer: "nn"})
	order := 0
	put := func(key string, x *tensor.Dense) {
		order++
		if err := w.Add(key, trace.TensorMeta{Name: "golden/" + key, Kind: trace.Activation, Order: order}, tensor.F64, x); err != nil {
			panic(err)
		}
	}
	putInts := func(key string, v []int) {
		d := make([]float64, len(v))
		for i, x := range v {
			d[i] = float64(x)
		}
		order++
		if err := w.Add(key, trace.TensorMeta{Name: "golden/" + key, Kind: trace.Input, Order: order}, tensor.I64, tensor.FromData([]int{len(v)}, d)); err != nil {
			panic(err)
		}
	}
	rnd := func(name string, shape ...int) *tensor.Dense {
		return tensor.NewRNG(11, name).NormalTensor(1, shape...)
	}

	x, wt, dy := rnd("linear.x", 2, 3, 8), rnd("linear.w", 6, 8), rnd("linear.dy", 2, 3, 6)
	dx, dw := nn.LinearBackward(x, wt, dy)
	put("linear.x", x)
	put("linear.w", wt)
	put("linear.y", nn.Linear(x, wt))
	put("linear.dy", dy)
	put("linear.dx", dx)
	put("linear.dw", dw)

	x, wt, dy = rnd("rmsnorm.x", 2, 3, 16), rnd("rmsnorm.w", 16), rnd("rmsnorm.dy", 2, 3, 16)
	y, rstd := nn.RMSNorm(x, wt)
	dx, dw = nn.RMSNormBackward(x, wt, rstd, dy)
	put("rmsnorm.x", x)
	put("rmsnorm.w", wt)
	put("rmsnorm.y", y)
	put("rmsnorm.dy", dy)
	put("rmsnorm.dx", dx)
	put("rmsnorm.dw", dw)

	cu := []int{0, 4, 7, 12}
	pos := nn.Positions(2, cu)
	x, dy = rnd("rope.x", 2, 12, 3, 8), rnd("rope.dy", 2, 12, 3, 8)
	put("rope.x", x)
	putInts("rope.pos", pos)
	put("rope.y", nn.RoPE(x, pos))
	put("rope.dy", dy)
	put("rope.dx", nn.RoPEBackward(dy, pos))

	q, k, v, dout := rnd("attn.q", 2, 12, 2, 8), rnd("attn.k", 2, 12, 2, 8), rnd("attn.v", 2, 12, 2, 8), rnd("attn.dout", 2, 12, 2, 8)
	out, probs := nn.Attention(q, k, v, cu)
	dq, dk, dv := nn.AttentionBackward(q, k, v, probs, dout, cu)
	put("attn.q", q)
	put("attn.k", k)
	put("attn.v", v)
	putInts("attn.cu", cu)
	put("attn.out", out)
	put("attn.probs", probs)
	put("attn.dout", dout)
	put("attn.dq", dq)
	put("attn.dk", dk)
	put("attn.dv", dv)

	// cu_seqlens ending before the row (the mtp-cu-seqlens-compacted bug, flash-attn varlen):
	// tokens 9–11 belong to no sequence, their output, probabilities and gradients are 0.
	// nn.Attention wants cu to tile the row, so the simulator's kernels (simulate/runtime) give
	// the expected values: a one-rank program of the two ops.
	short := []int{0, 3, 5, 9}
	putInts("attnshort.cu", short)
	for i, x := range simulatedAttention(q, k, v, dout, short) {
		put("attnshort."+attnOutputs[i], x)
	}

	gate, up, dy := rnd("swiglu.gate", 2, 3, 10), rnd("swiglu.up", 2, 3, 10), rnd("swiglu.dy", 2, 3, 10)
	dg, du := nn.SwiGLUBackward(gate, up, dy)
	put("swiglu.gate", gate)
	put("swiglu.up", up)
	put("swiglu.y", nn.SwiGLU(gate, up))
	put("swiglu.dy", dy)
	put("swiglu.dgate", dg)
	put("swiglu.dup", du)

	b, err := w.Bytes()
	if err != nil {
		panic(err)
	}
	return b
}

func TestKernelGolden(t *testing.T) {
	checkGolden(t, "kernels_golden.safetensors", buildKernelGolden())
}

// attnOutputs are the outputs of attention and attention_grad, in simulatedAttention's order.
var attnOutputs = []string{"out", "probs", "dq", "dk", "dv"}

// simulatedAttention runs attention and attention_grad with the given cu on the simulator's CPU
// runtime (a one-rank program) and returns attnOutputs.
func simulatedAttention(q, k, v, dout *tensor.Dense, cu []int) []*tensor.Dense {
	prog := &ir.Program{Format: ir.Format, Version: ir.Version, Rank: 0, World: 1,
		Mesh: ir.Mesh{Axes: []string{"tp"}, Shape: []int{1}}, Coord: map[string]int{"tp": 0},
		Inputs: []string{"q", "k", "v", "dout"},
		Ops: []ir.Op{
			{Op: "attention", In: []string{"q", "k", "v"}, Out: []string{"out", "probs"}, Attr: ir.Ints("cu", cu)},
			{Op: "attention_grad", In: []string{"q", "k", "v", "probs", "dout"}, Out: []string{"dq", "dk", "dv"}, Attr: ir.Ints("cu", cu)},
		}}
	for i, key := range attnOutputs {
		prog.Ops = append(prog.Ops, ir.Op{Op: "trace", In: []string{key},
			Trace: &ir.Tag{Key: key, Name: key, Kind: string(trace.Activation), Order: i}})
	}
	res, err := simrt.Run([]*ir.Program{prog}, []map[string]*tensor.Dense{{"q": q, "k": k, "v": v, "dout": dout}})
	if err != nil {
		panic(err)
	}
	var out []*tensor.Dense
	for _, tr := range res.Traces[0] {
		out = append(out, tr.T)
	}
	return out
}

// irSpec is simulate/ir's op table as cuda/tests/host_test.cpp reads it: the program format
// and version, and every op with its class, operand counts and required attributes, sorted by
// name. The C++ test fails when cuda/host/program.cpp's table differs in any of these.
type irSpec struct {
	Format  string     `json:"format"`
	Version int        `json:"version"`
	Ops     []irSpecOp `json:"ops"`
}

type irSpecOp struct {
	Op     string   `json:"op"`
	Class  string   `json:"class"`
	In     int      `json:"in"`
	Out    int      `json:"out"`
	Ints   []string `json:"ints"`
	Floats []string `json:"floats"`
	Strs   []string `json:"strs"`
}

func buildIRSpec() []byte {
	g := irSpec{Format: ir.Format, Version: ir.Version}
	for _, name := range slices.Sorted(maps.Keys(ir.Specs)) {
		s := ir.Specs[name]
		list := func(v []string) []string { return append([]string{}, v...) } // [] rather than null
		g.Ops = append(g.Ops, irSpecOp{Op: name, Class: s.Class.String(), In: s.In, Out: s.Out,
			Ints: list(s.Ints), Floats: list(s.Floats), Strs: list(s.Strs)})
	}
	b, err := json.MarshalIndent(g, "", " ")
	if err != nil {
		panic(err)
	}
	return append(b, '\n')
}

func TestIRSpecGolden(t *testing.T) { checkGolden(t, "ir_spec.json", buildIRSpec()) }
