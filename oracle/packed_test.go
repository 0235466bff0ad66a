package oracle

import (
	"fmt"
	"github.com/spcheck/spcheck/model"
	"math"
	"testing"

	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
)

// aloneTol bounds the difference between a packed sequence's outputs and the same sequence
// run alone. The two runs do the same operations on the same values except that matrix
// products see a different number of rows, which gonum's blocked kernels may round in a
// different order: a few ulps, amplified by at most the depth of the model.
const aloneTol = 1e-12

// sliceInputs returns the tokens [lo,hi) of every row of in as an unpacked batch.
func sliceInputs(in model.Inputs, lo, hi int) model.Inputs {
	return model.Inputs{IDs: in.IDs.Narrow(1, lo, hi-lo), Labels: in.Labels.Narrow(1, lo, hi-lo),
		LossMask: in.LossMask.Narrow(1, lo, hi-lo), CuSeqlens: []int{0, hi - lo}}
}

// validAt reports whether position i (of a sequence ending at end) is valid at MTP depth k
// (k = 0: the main model): its target ids[i+k+1] lies inside the sequence.
func validAt(i, end, k int) bool { return i+k+1 < end }

// TestPackedEqualsAlone (the cu_seqlens question of ms-swift #6496): with sequences of lengths 4, 3, 5 packed in each
// row, the outputs of every depth at valid positions equal each sequence run alone, and the
// loss numerators add up.
func TestPackedEqualsAlone(t *testing.T) {
	m := smallPlan(t, "mtp=2,packed=4:3:5").Model
	p, in := model.InitParams(m), model.MakeInputs(m)
	packed, err := RunWith(m, p, in)
	if err != nil {
		t.Fatal(err)
	}
	cu := m.CuSeqlens()
	names := []string{"act/layers.1.output", "act/logits"}
	for k := 1; k <= m.MTP; k++ {
		names = append(names, fmt.Sprintf("act/mtp.%d.eh_proj", k), fmt.Sprintf("act/mtp.%d.output", k), fmt.Sprintf("act/mtp.%d.logits", k))
	}
	numer := map[string]float64{}
	for j := 1; j < len(cu); j++ {
		lo, hi := cu[j-1], cu[j]
		alone := m
		alone.Seq, alone.Packed = hi-lo, nil
		res, err := RunWith(alone, p, sliceInputs(in, lo, hi))
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			k := depthOf(name)
			compareValid(t, fmt.Sprintf("sequence %d [%d,%d) %s", j-1, lo, hi, name), packed.Get(name), res.Get(name), lo, hi, k)
		}
		for _, l := range lossNames(m) {
			numer[l] += res.Loss(l) * denomOf(t, alone, res, l)
		}
	}
	for _, l := range lossNames(m) {
		want := packed.Loss(l) * denomOf(t, m, packed, l)
		if math.Abs(numer[l]-want) > aloneTol*math.Abs(want) {
			t.Errorf("%s: Σ w·ℓ over the sequences run alone is %.15g, packed %.15g", l, numer[l], want)
		}
	}
}

// TestPackedCheckCanFail is the negative control of TestPackedEqualsAlone: the same tokens
// with cu_seqlens ignored (attention and rolls across the boundaries) differ at valid
// positions of the later sequences.
func TestPackedCheckCanFail(t *testing.T) {
	m := smallPlan(t, "mtp=1,packed=4:3:5").Model
	p, in := model.InitParams(m), model.MakeInputs(m)
	packed, err := RunWith(m, p, in)
	if err != nil {
		t.Fatal(err)
	}
	whole := m
	whole.Packed = nil
	in.CuSeqlens = []int{0, m.Seq}
	res, err := RunWith(whole, p, in)
	if err != nil {
		t.Fatal(err)
	}
	a, b := packed.Get("act/mtp.1.logits"), res.Get("act/mtp.1.logits")
	if d := math.Abs(a.At(0, 4, 0) - b.At(0, 4, 0)); d < 1e-6 {
		t.Errorf("position 4 (first of sequence 1, valid at depth 1) agrees with the unpacked run (diff %g)", d)
	}
}

// TestMTPInvalidTail checks Megatron-LM's MTP validity rule (multi_token_prediction.py
// roll_tensor) on the rolled inputs: at depth
// k the last k+1 positions of every sequence carry zero loss weight.
func TestMTPInvalidTail(t *testing.T) {
	m := smallPlan(t, "mtp=2,packed=4:3:5").Model
	res, err := Run(m)
	if err != nil {
		t.Fatal(err)
	}
	ends := nn.SeqEnds(m.CuSeqlens())
	for k := 1; k <= m.MTP; k++ {
		lab := res.Get(fmt.Sprintf("input/mtp.%d.labels", k))
		mask := res.Get(fmt.Sprintf("input/mtp.%d.loss_mask", k))
		w := nn.LossWeights(ints(lab.Data), mask.Data)
		for j, wj := range w {
			i := j % m.Seq
			if !validAt(i, ends[i], k) && wj != 0 {
				t.Errorf("depth %d: position %d (sequence end %d) has loss weight %g", k, i, ends[i], wj)
			}
		}
	}
}

// depthOf is the MTP depth an activation name belongs to (0 for the main model).
func depthOf(name string) int {
	var k int
	if _, err := fmt.Sscanf(name, "act/mtp.%d.", &k); err == nil {
		return k
	}
	return 0
}

// compareValid compares packed positions [lo,hi) with the alone run at positions valid at
// depth k.
func compareValid(t *testing.T, what string, packed, alone *tensor.Dense, lo, hi, k int) {
	t.Helper()
	b, f := packed.Shape[0], packed.Shape[2]
	for r := 0; r < b; r++ {
		for i := lo; i < hi; i++ {
			if !validAt(i, hi, k) {
				continue
			}
			for c := 0; c < f; c++ {
				x, y := packed.At(r, i, c), alone.At(r, i-lo, c)
				if math.Abs(x-y) > aloneTol*math.Max(1, math.Abs(y)) {
					t.Fatalf("%s: row %d position %d feature %d is %.17g packed, %.17g alone", what, r, i, c, x, y)
				}
			}
		}
	}
}

func lossNames(m plan.Model) []string {
	names := []string{"loss/main"}
	for k := 1; k <= m.MTP; k++ {
		names = append(names, fmt.Sprintf("loss/mtp.%d", k))
	}
	return names
}

// denomOf recomputes the loss denominator Σ w of a loss from the recorded inputs.
func denomOf(t *testing.T, m plan.Model, res *Result, loss string) float64 {
	lab, mask := res.Get("input/labels"), res.Get("input/loss_mask")
	if loss != "loss/main" {
		d := loss[len("loss/"):]
		lab, mask = res.Get("input/"+d+".labels"), res.Get("input/"+d+".loss_mask")
	}
	if lab == nil || mask == nil {
		t.Fatalf("no recorded labels or mask for %s", loss)
	}
	_, denom := nn.MaskedMean(make([]float64, len(lab.Data)), nn.LossWeights(ints(lab.Data), mask.Data))
	return denom
}
