package model

import (
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
