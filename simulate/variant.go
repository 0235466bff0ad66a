package simulate

import (
	"fmt"

	"github.com/spcheck/spcheck/plan"
)

// Variant is a named bug: a rewrite of the plan before it is compiled, of the compiled programs,
// or both. plan.Plan.Bug names it; the same rewrite serves the simulator and the GPUs, which
// execute the same programs. Callers resolve a plan's bug name to its Variant (package bugs
// holds the catalogue) and pass it to Compile.
type Variant struct {
	Name    string
	Summary string
	// Plan, if set, rewrites a copy of the plan before compiling (the trace keeps the plan
	// string with its bug key, so the failure reproduces).
	Plan func(p *plan.Plan)
	// Programs, if set, rewrites the compiled programs (e.g. with ir.Rewrite on ops selected by
	// their Role) and, where the bug lives in the data a rank starts from (e.g. wrongly rolled
	// MTP ids), its starting tensors c.Init.
	Programs func(c *Compiled) error
	// Applies, if set, says why the bug cannot show on a plan (nil: it can), e.g. "needs pp > 1".
	// On such a plan the rewrite finds nothing to rewrite and the run is the correct one, so a
	// fuzzer asks Applies before expecting a detection. Nil means every valid plan.
	Applies func(p plan.Plan) error
}

// CanShow reports why v cannot show on p, or nil when it can.
func (v Variant) CanShow(p plan.Plan) error {
	if v.Applies == nil {
		return nil
	}
	return v.Applies(p)
}

// checkVariant reports a variant that is not the one p names: the plan string the traces carry
// must reproduce the run.
func checkVariant(p plan.Plan, v *Variant) error {
	switch {
	case v == nil && p.Bug != "":
		return fmt.Errorf("simulate: plan %q names bug variant %q, but no variant was given to compile it with", p.String(), p.Bug)
	case v != nil && v.Name != p.Bug:
		return fmt.Errorf("simulate: plan %q names bug variant %q, but the variant given is %q", p.String(), p.Bug, v.Name)
	}
	return nil
}
