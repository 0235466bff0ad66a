package oracle

import (
	"fmt"
	"math"

	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
)

// Inputs is one batch: ids, labels and loss mask [B,S] (integer values held as float64, the
// labels −100 where ignored) and the cu_seqlens of every row.
type Inputs struct {
	IDs, Labels, LossMask *tensor.Dense
	CuSeqlens             []int
}

// ExtraIgnoreFrac and MaskedFrac are the chances that a token gets label −100 on top of the
// sequence ends, and loss-mask 0: both masking paths (ignore_index and loss mask) are
// exercised, separately and together.
const (
	ExtraIgnoreFrac = 0.125
	MaskedFrac      = 0.125
)

// MakeInputs returns m's deterministic batch. Element j (flat index b·S+i) of each tensor uses
// counter j of tensor.NewRNG(m.Seed, name) with name the traced name:
//
//	input/ids:       Intn(j, V)
//	input/labels:    ids[b,i+1] inside i's sequence, −100 at each sequence's last token, and
//	                 −100 where Uniform(j) < ExtraIgnoreFrac
//	input/loss_mask: 0 where Uniform(j) < MaskedFrac, else 1
func MakeInputs(m plan.Model) Inputs {
	b, s := m.Batch, m.Seq
	cu := m.CuSeqlens()
	ends := nn.SeqEnds(cu)
	idRNG := tensor.NewRNG(m.Seed, "input/ids")
	labRNG := tensor.NewRNG(m.Seed, "input/labels")
	maskRNG := tensor.NewRNG(m.Seed, "input/loss_mask")
	in := Inputs{IDs: tensor.New(b, s), Labels: tensor.New(b, s), LossMask: tensor.New(b, s), CuSeqlens: cu}
	for j := range in.IDs.Data {
		in.IDs.Data[j] = float64(idRNG.Intn(uint64(j), m.Vocab))
	}
	for j := range in.Labels.Data {
		i := j % s
		label := float64(nn.IgnoreIndex)
		if i+1 < ends[i] && labRNG.Uniform(uint64(j)) >= ExtraIgnoreFrac {
			label = in.IDs.Data[j+1]
		}
		in.Labels.Data[j] = label
		if maskRNG.Uniform(uint64(j)) >= MaskedFrac {
			in.LossMask.Data[j] = 1
		}
	}
	return in
}

// check reports the first input that does not fit m: a wrong shape, an id or label outside
// the vocabulary, a non-integer or non-finite value, bad cu_seqlens.
func (in Inputs) check(m plan.Model) error {
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
