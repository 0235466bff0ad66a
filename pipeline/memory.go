package pipeline

import (
	"fmt"

	"github.com/spcheck/spcheck/oracle"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/verify"
)

// SimulatorMemory is a lower bound, in bytes, on what a simulated run of p holds at its peak:
// every logical tensor the oracle records (oracle.Footprint.Records: inputs, parameters and
// their gradients, activations and theirs) lives on at least one rank as float64, so do the
// attention probabilities the backward reads, and the trace the ranks' records become
// (Footprint.Encoded). Replicated and padded pieces only add to it, so a plan refused on this
// bound could never have run.
func SimulatorMemory(p plan.Plan) int64 {
	f := oracle.EstimateMemory(p)
	return f.Records() + f.Attention + f.Encoded
}

// ReferenceMemory is what the oracle's reference of p holds when computed in memory (Reference):
// its run and its encoded trace.
func ReferenceMemory(p plan.Plan) int64 {
	f := oracle.EstimateMemory(p)
	return f.Run() + f.Encoded
}

// MemoryError is a plan whose simulated run (with the oracle's reference, for a comparison)
// cannot fit in this machine's memory.
type MemoryError struct {
	Plan      string
	Simulator int64 // SimulatorMemory
	Reference int64 // the oracle's run and its in-memory trace, 0 when not counted
	Limit     int64
	LimitSrc  string
}

func (e *MemoryError) Error() string {
	ref := ""
	if e.Reference > 0 {
		ref = fmt.Sprintf(", then the float64 reference beside the candidate's trace: %s more", verify.FormatBytes(e.Reference))
	}
	return fmt.Sprintf("plan '%s' needs at least %s of memory (the simulated ranks hold every logical tensor as float64, "+
		"the attention probabilities and the encoded trace: %s%s) but this machine has %s (%s); "+
		"reduce seq, batch, layers or hidden, or run it on GPUs (spcheck gpu --ref gpu)",
		e.Plan, verify.FormatBytes(e.Simulator+e.Reference), verify.FormatBytes(e.Simulator), ref, verify.FormatBytes(e.Limit), e.LimitSrc)
}

// CheckMemory refuses p before anything is allocated when its simulated run cannot fit in the
// machine's memory (oracle.MachineMemory); withReference adds the oracle's run and in-memory
// trace that a comparison computes while the candidate's trace is held. With no known limit it
// lets the run go.
func CheckMemory(p plan.Plan, withReference bool) error {
	limit, src := oracle.MachineMemory()
	if limit <= 0 {
		return nil
	}
	e := &MemoryError{Plan: p.Short(), Simulator: SimulatorMemory(p), Limit: limit, LimitSrc: src}
	if withReference {
		e.Reference = ReferenceMemory(p)
	}
	if e.Simulator+e.Reference > limit {
		return e
	}
	return nil
}
