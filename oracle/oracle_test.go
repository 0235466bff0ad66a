package oracle

import (
	"fmt"
	"github.com/spcheck/spcheck/model"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// TestNamingContract checks the names, kinds, shapes and order that the simulator, the
// verifier and the bug catalogue rely on (docs/model.md).
func TestNamingContract(t *testing.T) {
	for _, tied := range []bool{false, true} {
		m := smallPlan(t, fmt.Sprintf("mtp=2,packed=4:3:5,tied=%v", tied)).Model
		res, err := Run(m)
		if err != nil {
			t.Fatal(err)
		}
		b, s, h, v := m.Batch, m.Seq, m.Hidden, m.Vocab
		want := map[string][]int{"input/ids": {b, s}, "input/labels": {b, s}, "input/loss_mask": {b, s}, "input/cu_seqlens": {4},
			"act/embed": {b, s, h}, "act/final_norm": {b, s, h}, "act/logits": {b, s, v},
			"loss/main": nil, "loss/total": nil}
		for i := 0; i < m.Layers; i++ {
			for _, a := range []string{"attn_out", "mlp_out", "output"} {
				want[fmt.Sprintf("act/layers.%d.%s", i, a)] = []int{b, s, h}
			}
		}
		for k := 1; k <= m.MTP; k++ {
			want[fmt.Sprintf("act/mtp.%d.eh_proj", k)] = []int{b, s, h}
			want[fmt.Sprintf("act/mtp.%d.output", k)] = []int{b, s, h}
			want[fmt.Sprintf("act/mtp.%d.logits", k)] = []int{b, s, v}
			want[fmt.Sprintf("loss/mtp.%d", k)] = nil
		}
		for _, ps := range model.ParamShapes(m) {
			want["param/"+ps.Name] = ps.Shape
			want["grad/"+ps.Name] = ps.Shape
		}
		for name, shape := range want {
			got := res.Get(name)
			if got == nil {
				t.Errorf("tied=%v: %s is missing", tied, name)
			} else if !slices.Equal(got.Shape, shape) {
				t.Errorf("tied=%v: %s has shape %v, want %v", tied, name, got.Shape, shape)
			}
		}
		if has := res.Get("param/lm_head.weight") != nil; has == tied {
			t.Errorf("tied=%v: param/lm_head.weight present=%v", tied, has)
		}
		checkOrder(t, res)
	}
}

// checkOrder checks that orders count 0,1,2,… and that every gradient comes after every
// forward tensor, kinds matching name prefixes.
func checkOrder(t *testing.T, res *Result) {
	t.Helper()
	prefixKind := map[string]trace.Kind{"input/": trace.Input, "param/": trace.Param, "act/": trace.Activation,
		"loss/": trace.Loss, "agrad/": trace.ActivationGrad, "grad/": trace.ParamGrad}
	lastForward, firstBackward := -1, len(res.Records)
	for i, r := range res.Records {
		if r.Order != i {
			t.Fatalf("%s has order %d at position %d", r.Name, r.Order, i)
		}
		kind := trace.Kind("")
		for p, k := range prefixKind {
			if strings.HasPrefix(r.Name, p) {
				kind = k
			}
		}
		if kind != r.Kind {
			t.Errorf("%s has kind %q", r.Name, r.Kind)
		}
		if kind == trace.ActivationGrad || kind == trace.ParamGrad {
			firstBackward = min(firstBackward, i)
		} else {
			lastForward = i
		}
	}
	if lastForward > firstBackward {
		t.Errorf("a forward tensor (order %d) comes after the first gradient (order %d)", lastForward, firstBackward)
	}
}

// TestInputsExerciseMasks checks that the test models' inputs take both masking paths: extra
// −100 labels inside sequences, and loss-mask zeros on tokens that have a label.
func TestInputsExerciseMasks(t *testing.T) {
	for _, s := range []string{"mtp=2,packed=4:3:5", "seq=6,layers=1"} {
		m := smallPlan(t, s).Model
		in := model.MakeInputs(m)
		ends := nn.SeqEnds(m.CuSeqlens())
		extra, masked := 0, 0
		for j, l := range in.Labels.Data {
			i := j % m.Seq
			if l == nn.IgnoreIndex && i+1 < ends[i] {
				extra++
			}
			if l != nn.IgnoreIndex && in.LossMask.Data[j] == 0 {
				masked++
			}
			if i+1 < ends[i] && l != nn.IgnoreIndex && l != in.IDs.Data[j+1] {
				t.Fatalf("%s: label %g at %d is not the next token %g", s, l, j, in.IDs.Data[j+1])
			}
			if i+1 == ends[i] && l != nn.IgnoreIndex {
				t.Fatalf("%s: label at the end of a sequence (%d) is %g, want -100", s, j, l)
			}
		}
		if extra == 0 || masked == 0 {
			t.Errorf("%s: %d extra ignored labels and %d masked labelled tokens; want both > 0", s, extra, masked)
		}
	}
}

// TestInitValueMatchesShards checks that an element generated alone (as a TP rank does for its
// shard) equals the full tensor's element, and the init statistics.
func TestInitValueMatchesShards(t *testing.T) {
	m := smallPlan(t, "mtp=1").Model
	for _, ps := range model.ParamShapes(m) {
		full := model.InitParam(m, ps.Name, ps.Shape)
		last := len(full.Data) - 1
		if model.InitValue(m, ps.Name, ps.Shape, last) != full.Data[last] {
			t.Fatalf("%s: InitValue at %d differs from InitParam", ps.Name, last)
		}
	}
	w := model.InitParam(m, "layers.0.mlp.down.weight", []int{m.Hidden, m.FFN}) // fan_in = FFN
	n := model.InitParam(m, "final_norm.weight", []int{m.Hidden})
	for _, x := range n.Data {
		if x < 0.5 || x > 1.5 {
			t.Errorf("norm weight %g is not near 1", x)
		}
	}
	if w.Data[0] == w.Data[1] || n.Data[0] == 1 {
		t.Error("weights are not random")
	}
}

// TestDeterministicAcrossGOMAXPROCS runs a model large enough for gonum's parallel GEMM path
// under 1 and 4 workers: every tensor must be bit-identical.
func TestDeterministicAcrossGOMAXPROCS(t *testing.T) {
	p, err := plan.Parse("vocab=300,hidden=128,heads=2,layers=1,ffn=256,seq=128,batch=2,mtp=1,packed=100:28")
	if err != nil {
		t.Fatal(err)
	}
	run := func(procs int) *Result {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
		res, err := Run(p.Model)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	one, four := run(1), run(4)
	for i, r := range one.Records {
		if !tensor.BitEqual(r.Tensor, four.Records[i].Tensor) {
			t.Fatalf("%s differs between GOMAXPROCS=1 and 4", r.Name)
		}
	}
}

// TestWriteTrace writes the reference trace and reads it back through package trace.
func TestWriteTrace(t *testing.T) {
	for _, tc := range scenario.Cases(t, []struct {
		reason string
		plan   string
		dtype  tensor.DType
	}{
		{"default fp64", "mtp=2,packed=4:3:5", tensor.F64},
		{"bf16 storage; parallel keys ignored", "dtype=bf16,tp=2,pp=2", tensor.BF16},
	}) {
		p := smallPlan(t, tc.plan)
		dir := t.TempDir()
		if err := WriteTrace(dir, p); err != nil {
			t.Fatal(err)
		}
		tr, err := trace.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		f := tr.Files[0]
		if f.Meta.World != 1 || f.Meta.Producer != Producer || f.Meta.Plan != p.String() || f.Meta.Seed != p.Seed {
			t.Errorf("%s: meta %+v", tc.reason, f.Meta)
		}
		res, _ := Run(p.Model)
		if len(f.Entries) != len(res.Records) {
			t.Fatalf("%s: %d entries, %d records", tc.reason, len(f.Entries), len(res.Records))
		}
		for i, e := range f.Entries {
			r := res.Records[i]
			want := tc.dtype
			if r.Kind == trace.Input {
				want = tensor.I64
			}
			if e.Meta.Name != r.Name || e.Meta.Order != r.Order || e.Meta.Kind != r.Kind || e.DType != want {
				t.Fatalf("%s: entry %d is %s/%v/%d %v, want %s/%v/%d %v", tc.reason, i, e.Meta.Name, e.Meta.Kind, e.Meta.Order, e.DType, r.Name, r.Kind, r.Order, want)
			}
			got, err := f.Tensor(e)
			if err != nil {
				t.Fatal(err)
			}
			if !tensor.BitEqual(got, r.Tensor.RoundAll(want)) {
				t.Fatalf("%s: %s does not read back", tc.reason, r.Name)
			}
		}
		tr.Close()
	}
}

func TestBadInputsAreErrors(t *testing.T) {
	m := smallPlan(t, "mtp=1,packed=4:3:5").Model
	for _, tc := range scenario.Cases(t, []struct {
		reason string
		edit   func(model.Params, *model.Inputs)
		want   string
	}{
		{"missing parameter", func(p model.Params, _ *model.Inputs) { delete(p, "layers.1.attn.o.weight") }, "layers.1.attn.o.weight is missing"},
		{"parameter of the wrong shape", func(p model.Params, _ *model.Inputs) { p["final_norm.weight"] = tensor.New(3) }, "final_norm.weight has shape"},
		{"id outside the vocabulary", func(_ model.Params, in *model.Inputs) { in.IDs.Data[5] = 11 }, "input/ids element 5"},
		{"label neither -100 nor a token", func(_ model.Params, in *model.Inputs) { in.Labels.Data[2] = -1 }, "input/labels element 2"},
		{"NaN in the loss mask", func(_ model.Params, in *model.Inputs) { in.LossMask.Data[0] = nanValue() }, "input/loss_mask element 0"},
		{"cu_seqlens not ending at seq", func(_ model.Params, in *model.Inputs) { in.CuSeqlens = []int{0, 4, 7, 11} }, "input/cu_seqlens"},
		{"labels of the wrong shape", func(_ model.Params, in *model.Inputs) { in.Labels = tensor.New(2, 3) }, "input/labels must have shape"},
	}) {
		p, in := model.InitParams(m), model.MakeInputs(m)
		tc.edit(p, &in)
		_, err := RunWith(m, p, in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one containing %q", tc.reason, err, tc.want)
		}
	}
	bad := m
	bad.Heads = 3
	if _, err := Run(bad); err == nil {
		t.Error("hidden 8 with 3 heads accepted")
	}
	pl := plan.Default()
	pl.Model, pl.Vocab = m, 1
	if err := WriteTrace(t.TempDir(), pl); err == nil {
		t.Error("a plan with vocab=1 accepted by WriteTrace")
	}
}

func nanValue() float64 { z := 0.0; return z / z }

// TestGoldenLosses pins the default plan's losses (printed to 10 digits, which no FMA or
// GOARCH difference reaches), so a change of the reference model is a reviewed diff.
func TestGoldenLosses(t *testing.T) {
	var b strings.Builder
	for _, s := range []string{"", "mtp=2,packed=4:3:5,tied=true"} {
		p, err := plan.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		res, err := Run(p.Model)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "plan %s\n", p)
		for _, r := range res.Records {
			if r.Kind == trace.Loss {
				fmt.Fprintf(&b, "  %-12s %.10g\n", r.Name, r.Tensor.Data[0])
			}
		}
	}
	scenario.Golden(t, filepath.Join("testdata", "losses.golden"), []byte(b.String()))
}

// TestBlockedGemmSameBits runs whole models with every product on gonum's Dgemm and on nn's
// blocked GEMM (the default): every recorded tensor — activations, losses, gradients — must
// be bit-identical, so the speed-up changes no trace, MD5 or golden file. The plans are large
// enough for the blocked path, with sizes the tiles do not divide and sequences short enough
// for gonum's serial dot (a whole-k chunk) beside its 64-chunked parallel one.
func TestBlockedGemmSameBits(t *testing.T) {
	for _, s := range []string{
		"vocab=300,hidden=128,heads=2,layers=1,ffn=256,seq=128,batch=2,mtp=1,packed=100:28",
		"vocab=251,hidden=96,heads=3,layers=2,ffn=200,seq=150,batch=1,mtp=2,packed=61:70:19,tied=true",
		"vocab=150,hidden=128,heads=1,layers=1,ffn=160,seq=60,batch=1,mtp=1", // 60 tokens: serial dots over k = 128
	} {
		p, err := plan.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		run := func(gonum bool) *Result {
			defer nn.GonumOnly(nn.GonumOnly(gonum))
			res, err := Run(p.Model)
			if err != nil {
				t.Fatal(err)
			}
			return res
		}
		ref, got := run(true), run(false)
		for i, r := range ref.Records {
			if !tensor.BitEqual(r.Tensor, got.Records[i].Tensor) {
				t.Fatalf("%s: %s differs between gonum's and the blocked GEMM", s, r.Name)
			}
		}
	}
}
