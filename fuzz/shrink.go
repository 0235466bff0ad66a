package fuzz

import (
	"slices"

	"github.com/leanovate/gopter"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
)

// ShrinkPlan yields simpler valid plans than p, boldest first. gopter keeps the first that
// still fails and shrinks again from it, so the final plan is one where no single step below
// still fails: a local minimum in every field.
func ShrinkPlan(p plan.Plan) gopter.Shrink { return shrinkList(Simpler(p)) }

// shrinkList streams cands in order.
func shrinkList[T any](cands []T) gopter.Shrink {
	i := 0
	return func() (any, bool) {
		if i >= len(cands) {
			return nil, false
		}
		i++
		return cands[i-1], true
	}
}

// step is one simplification of a plan; it reports false when it does not apply.
type step func(p *plan.Plan) bool

// steps move each field toward its simplest value: tp→1 then 2, pp→1, dp→1, D→0, λ to the
// default, SP off (else Megatron's rather than vLLM's),
// partial P2P off, one micro-batch, unpacked, the smallest dims the mesh allows, seed 1.
var steps = []step{
	setInt(func(p *plan.Plan) *int { return &p.TP }, 1),
	setInt(func(p *plan.Plan) *int { return &p.TP }, 2),
	setInt(func(p *plan.Plan) *int { return &p.PP }, 1),
	setInt(func(p *plan.Plan) *int { return &p.PP }, 2),
	setInt(func(p *plan.Plan) *int { return &p.DP }, 1),
	setInt(func(p *plan.Plan) *int { return &p.MTP }, 0),
	decInt(func(p *plan.Plan) *int { return &p.MTP }, 0),
	func(p *plan.Plan) bool { return change(&p.MTPLambda, plan.Default().MTPLambda) },
	func(p *plan.Plan) bool { return change(&p.SP, plan.SPOff) },
	func(p *plan.Plan) bool { return p.SP == plan.SPVLLM && change(&p.SP, plan.SPMegatron) },
	func(p *plan.Plan) bool { return change(&p.PartialP2P, false) },
	setInt(func(p *plan.Plan) *int { return &p.Microbatches }, 1),
	func(p *plan.Plan) bool { return change(&p.Schedule, plan.OneFOneB) },
	func(p *plan.Plan) bool { return change(&p.Tied, false) },
	unpack,
	dropLastPacked,
	func(p *plan.Plan) bool { return change(&p.Layers, p.PP) },
	decInt(func(p *plan.Plan) *int { return &p.Layers }, 1),
	func(p *plan.Plan) bool { return change(&p.Heads, p.TP) },
	func(p *plan.Plan) bool { return change(&p.Hidden, 2*p.Heads) },
	func(p *plan.Plan) bool { return change(&p.FFN, p.TP) },
	func(p *plan.Plan) bool { return change(&p.Batch, p.DP*p.Microbatches) },
	halveInt(func(p *plan.Plan) *int { return &p.Vocab }, 2),
	decInt(func(p *plan.Plan) *int { return &p.Vocab }, 2),
	shortenSeq(true),
	shortenSeq(false),
	func(p *plan.Plan) bool { return change(&p.DType, tensor.F64) },
	func(p *plan.Plan) bool { return change(&p.Seed, 1) },
}

// Simpler lists the valid plans one step simpler than p, in the order of steps, without
// duplicates.
func Simpler(p plan.Plan) []plan.Plan {
	var out []plan.Plan
	seen := map[string]bool{p.String(): true}
	for _, s := range steps {
		q := clonePlan(p)
		if !s(&q) {
			continue
		}
		repair(&q)
		if key := q.String(); !seen[key] && q.Validate() == nil {
			seen[key] = true
			out = append(out, q)
		}
	}
	return out
}

func clonePlan(p plan.Plan) plan.Plan {
	p.Packed = slices.Clone(p.Packed)
	return p
}

// repair restores the invariants a step may break (heads and ffn multiples of tp, batch a
// multiple of dp × microbatches, layers ≥ pp) by growing the dependent field, never the step's.
func repair(p *plan.Plan) {
	p.Heads = roundUp(p.Heads, p.TP)
	for p.Hidden%p.Heads != 0 || (p.Hidden/p.Heads)%2 != 0 {
		p.Hidden++
	}
	p.FFN = roundUp(p.FFN, p.TP)
	p.Batch = roundUp(p.Batch, p.DP*p.Microbatches)
	p.Layers = max(p.Layers, p.PP)
}

func roundUp(x, m int) int { return (x + m - 1) / m * m }

func change[T comparable](field *T, v T) bool {
	if *field == v {
		return false
	}
	*field = v
	return true
}

// setInt sets a field to v when that is smaller.
func setInt(f func(*plan.Plan) *int, v int) step {
	return func(p *plan.Plan) bool { return *f(p) > v && change(f(p), v) }
}

func decInt(f func(*plan.Plan) *int, floor int) step {
	return func(p *plan.Plan) bool { return *f(p) > floor && change(f(p), *f(p)-1) }
}

func halveInt(f func(*plan.Plan) *int, floor int) step {
	return func(p *plan.Plan) bool { return *f(p)/2 >= floor && change(f(p), *f(p)/2) }
}

func unpack(p *plan.Plan) bool {
	if len(p.Packed) == 0 {
		return false
	}
	p.Packed = nil
	return true
}

func dropLastPacked(p *plan.Plan) bool {
	if len(p.Packed) < 3 {
		return false
	}
	p.Seq -= p.Packed[len(p.Packed)-1]
	p.Packed = p.Packed[:len(p.Packed)-1]
	return true
}

// shortenSeq halves (or decrements) the sequence; a packed row loses tokens from its last
// sequence.
func shortenSeq(halve bool) step {
	return func(p *plan.Plan) bool {
		target := p.Seq - 1
		if halve {
			target = p.Seq / 2
		}
		if target < 1 {
			return false
		}
		if len(p.Packed) > 0 {
			last := len(p.Packed) - 1
			cut := p.Seq - target
			if p.Packed[last] <= cut {
				return false
			}
			p.Packed[last] -= cut
		}
		p.Seq = target
		return true
	}
}
