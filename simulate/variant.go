package simulate

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/spcheck/spcheck/plan"
)

// Variant is a named bug: a rewrite of the plan before it is compiled, of the compiled programs,
// or both. plan.Plan.Bug names it; the same rewrite serves the simulator and the GPUs, which
// execute the same programs.
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

// LookupVariant returns the registered variant called name.
func LookupVariant(name string) (Variant, bool) {
	variantsMu.RLock()
	defer variantsMu.RUnlock()
	v, ok := variants[name]
	return v, ok
}

var (
	variantsMu sync.RWMutex
	variants   = map[string]Variant{}
)

// RegisterVariant adds a bug variant; registering a name twice panics (a programming error).
func RegisterVariant(v Variant) {
	variantsMu.Lock()
	defer variantsMu.Unlock()
	if v.Name == "" || variants[v.Name].Name != "" {
		panic(fmt.Sprintf("simulate: bug variant %q registered twice or unnamed", v.Name))
	}
	variants[v.Name] = v
}

// Variants lists the registered bug variants by name.
func Variants() []Variant {
	variantsMu.RLock()
	defer variantsMu.RUnlock()
	out := make([]Variant, 0, len(variants))
	for _, v := range variants {
		out = append(out, v)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func lookupVariant(p plan.Plan) (Variant, error) {
	variantsMu.RLock()
	v, ok := variants[p.Bug]
	variantsMu.RUnlock()
	if ok {
		return v, nil
	}
	names := []string{}
	for _, v := range Variants() {
		names = append(names, v.Name)
	}
	known := "none are registered"
	if len(names) > 0 {
		known = "known: " + strings.Join(slices.Clip(names), ", ")
	}
	return Variant{}, fmt.Errorf("simulate: plan %q names bug variant %q, which the simulator does not know (%s)", p.String(), p.Bug, known)
}
