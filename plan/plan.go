package plan

import (
	"fmt"
	"math"
	"slices"

	"github.com/spcheck/spcheck/tensor"
)

// Model is the model configuration: the oracle's whole input besides the seed.
type Model struct {
	Vocab     int     // vocabulary size (need not divide by tp: vocab-parallel pads)
	Hidden    int     // H
	Heads     int     // attention heads; Hidden/Heads is the head dim, which must be even (RoPE)
	Layers    int     // transformer layers of the main model
	FFN       int     // SwiGLU inner size
	Seq       int     // tokens per batch row (the sum of Packed when packed)
	Batch     int     // batch rows
	MTP       int     // multi-token-prediction depths D
	MTPLambda float64 // λ: total loss = L_main + (λ/D)·Σ_k L_k
	Packed    []int   // packed sequence lengths per row (cu_seqlens); empty = one sequence per row
	Tied      bool    // LM head shares the embedding weight
	DType     tensor.DType
	Seed      uint64
}

// SPStyle is the sequence-parallel flavour.
type SPStyle string

const (
	SPOff      SPStyle = "off"
	SPMegatron SPStyle = "megatron"
	SPVLLM     SPStyle = "vllm"
)

// Schedule is the pipeline schedule.
type Schedule string

const (
	GPipe    Schedule = "gpipe"
	OneFOneB Schedule = "1f1b"
)

// Parallel is the parallel configuration.
type Parallel struct {
	TP, PP, DP   int
	SP           SPStyle
	PartialP2P   bool // Paddle's enable_partial_send_recv
	Microbatches int
	Schedule     Schedule
}

// Plan is a model, a way to split it, and optionally a named bug variant.
type Plan struct {
	Model
	Parallel
	Bug string // catalogue name of a bug variant; "" = correct
}

// Default is the built-in plan: small enough to run in milliseconds, with the awkward edges on
// (a vocab that no tp divides, MTP on, untied head).
func Default() Plan {
	return Plan{
		Model: Model{Vocab: 37, Hidden: 16, Heads: 2, Layers: 2, FFN: 32, Seq: 8, Batch: 2,
			MTP: 1, MTPLambda: 0.3, DType: tensor.F64, Seed: 1},
		Parallel: Parallel{TP: 1, PP: 1, DP: 1, SP: SPOff, Microbatches: 1, Schedule: OneFOneB},
	}
}

// HeadDim is Hidden/Heads.
func (m Model) HeadDim() int { return m.Hidden / m.Heads }

// SeqLens are the packed sequence lengths of one row (one sequence of Seq tokens if unpacked).
func (m Model) SeqLens() []int {
	if len(m.Packed) == 0 {
		return []int{m.Seq}
	}
	return slices.Clone(m.Packed)
}

// CuSeqlens are the cumulative offsets [0, l0, l0+l1, …, Seq] of one row.
func (m Model) CuSeqlens() []int {
	cu := []int{0}
	for _, l := range m.SeqLens() {
		cu = append(cu, cu[len(cu)-1]+l)
	}
	return cu
}

// Validate reports the first thing that makes the plan unrunnable.
func (p Plan) Validate() error {
	m, q := p.Model, p.Parallel
	// Sizes that later checks divide by come first, so no check below can divide by zero.
	switch {
	case m.Heads < 1 || m.Hidden < 2:
		return fmt.Errorf("invalid plan %q: hidden must be ≥ 2 and heads ≥ 1", p.String())
	case q.TP < 1 || q.PP < 1 || q.DP < 1 || q.Microbatches < 1:
		return fmt.Errorf("invalid plan %q: tp, pp, dp and microbatches must be ≥ 1", p.String())
	}
	checks := []struct {
		bad bool
		msg string
	}{
		{m.Vocab < 2, "vocab must be ≥ 2"},
		{m.Hidden < 2 || m.Heads < 1, "hidden must be ≥ 2 and heads ≥ 1"},
		{m.Heads > 0 && m.Hidden%m.Heads != 0, "hidden must be a multiple of heads"},
		{m.Heads > 0 && m.HeadDim()%2 != 0, "hidden/heads (the head dim) must be even for RoPE"},
		{m.Layers < 1 || m.FFN < 1, "layers and ffn must be ≥ 1"},
		{m.Seq < 1 || m.Batch < 1, "seq and batch must be ≥ 1"},
		{m.MTP < 0, "mtp must be ≥ 0"},
		{!(m.MTPLambda >= 0) || math.IsInf(m.MTPLambda, 0), "mtp_lambda must be a finite number ≥ 0"},
		{len(m.Packed) > 0 && sum(m.Packed) != m.Seq, "packed lengths must add up to seq"},
		{slices.ContainsFunc(m.Packed, func(l int) bool { return l < 1 }), "packed lengths must be ≥ 1"},
		{!m.DType.IsFloat(), "dtype must be fp64, fp32, bf16 or fp16"},
		{q.TP < 1 || q.PP < 1 || q.DP < 1, "tp, pp and dp must be ≥ 1"},
		{m.Heads%q.TP != 0, "heads must be a multiple of tp (attention heads are split across TP ranks)"},
		{m.FFN%q.TP != 0, "ffn must be a multiple of tp (gate/up columns are split across TP ranks)"},
		{q.PP > m.Layers, "pp must not exceed layers (each stage needs ≥ 1 layer)"},
		{q.Microbatches < 1, "microbatches must be ≥ 1"},
		{m.Batch%(q.DP*q.Microbatches) != 0, "batch must be a multiple of dp × microbatches"},
		{!slices.Contains([]SPStyle{SPOff, SPMegatron, SPVLLM}, q.SP), "sp must be off, megatron or vllm"},
		{!slices.Contains([]Schedule{GPipe, OneFOneB}, q.Schedule), "schedule must be gpipe or 1f1b"},
	}
	for _, c := range checks {
		if c.bad {
			return fmt.Errorf("invalid plan %q: %s", p.String(), c.msg)
		}
	}
	return nil
}

func sum(xs []int) int {
	s := 0
	for _, x := range xs {
		s += x
	}
	return s
}

// World is dp·pp·tp.
func (p Plan) World() int { return p.DP * p.PP * p.TP }
