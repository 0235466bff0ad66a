package oracle

import (
	"fmt"
	"math"

	"github.com/spcheck/spcheck/model"
	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
)

// check reports the first parameter that is missing or has the wrong shape.
func checkParams(p model.Params, m plan.Model) error {
	for _, s := range model.ParamShapes(m) {
		t, ok := p[s.Name]
		if !ok {
			return fmt.Errorf("oracle: parameter %s is missing", s.Name)
		}
		if !tensor.SameShape(t.Shape, s.Shape) || len(t.Data) != tensor.Numel(s.Shape) {
			return fmt.Errorf("oracle: parameter %s has shape %v, want %v", s.Name, t.Shape, s.Shape)
		}
	}
	return nil
}

// check reports the first input that does not fit m: a wrong shape, an id or label outside
// the vocabulary, a non-integer or non-finite value, bad cu_seqlens.
func checkInputs(in model.Inputs, m plan.Model) error {
	want := []int{m.Batch, m.Seq}
	for _, c := range []struct {
		name string
		t    *tensor.Dense
		ok   func(v float64) bool
		what string
	}{
		{"input/ids", in.IDs, func(v float64) bool { return isInt(v) && v >= 0 && v < float64(m.Vocab) }, fmt.Sprintf("an integer in [0,%d)", m.Vocab)},
		{"input/labels", in.Labels, func(v float64) bool { return v == nn.IgnoreIndex || isInt(v) && v >= 0 && v < float64(m.Vocab) }, fmt.Sprintf("-100 or an integer in [0,%d)", m.Vocab)},
		{"input/loss_mask", in.LossMask, func(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) && v >= 0 }, "finite and ≥ 0"},
	} {
		if c.t == nil || !tensor.SameShape(c.t.Shape, want) || len(c.t.Data) != tensor.Numel(want) {
			return fmt.Errorf("oracle: %s must have shape %v", c.name, want)
		}
		for j, v := range c.t.Data {
			if !c.ok(v) {
				return fmt.Errorf("oracle: %s element %d is %v, want %s", c.name, j, v, c.what)
			}
		}
	}
	if err := nn.CheckCuSeqlens(in.CuSeqlens, m.Seq); err != nil {
		return fmt.Errorf("oracle: input/cu_seqlens: %v", err)
	}
	return nil
}

func isInt(v float64) bool { return v == math.Trunc(v) && !math.IsInf(v, 0) }

// ints converts integer-valued float64s to ints.
func ints(xs []float64) []int {
	out := make([]int, len(xs))
	for i, v := range xs {
		out[i] = int(v)
	}
	return out
}

// cuTensor is cu_seqlens as a 1-d tensor for the trace.
func cuTensor(cu []int) *tensor.Dense {
	t := tensor.New(len(cu))
	for i, v := range cu {
		t.Data[i] = float64(v)
	}
	return t
}
