package bugs

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/serving"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/verify"
)

// Class is a class of distributed-parallel bug; each catalogue entry is an instance of one.
type Class string

const (
	C1 Class = "C1" // replication precondition violated (partial send + all-gather of a sharded tensor)
	C2 Class = "C2" // rank-unaware slicing (offset 0 instead of rank·len)
	C3 Class = "C3" // wrong adjoint of a collective / missing reduction of replicated-parameter grads
	C4 Class = "C4" // MTP sequence-shift, boundary and loss errors (labels, masks, cu_seqlens, scale)
	C5 Class = "C5" // emission multiplicity: exactly one emitter per replica group
	C6 Class = "C6" // predicted shape ≠ actual shape in an overlapped schedule
	C7 Class = "C7" // mutable shared config toggled around a region that is re-executed later
	C8 Class = "C8" // precision lost on one rank (a low-precision accumulator where its peers keep fp32)
)

// ClassTitle is the one-line title of each class.
var ClassTitle = map[Class]string{
	C1: "replication precondition violated",
	C2: "rank-unaware slicing",
	C3: "wrong adjoint / missing gradient reduction",
	C4: "MTP shift, boundary and loss errors",
	C5: "emission multiplicity",
	C6: "predicted ≠ actual launch shape",
	C7: "config toggled around a re-executed region",
	C8: "precision lost on one rank",
}

// Domain says which executor a bug lives in.
type Domain string

const (
	Training Domain = "training" // a rewrite of the per-rank programs, run by simulate (and cuda)
	Serving  Domain = "serving"  // a variant of package serving's decode loop
)

// Bug is one catalogue entry.
type Bug struct {
	Name    string
	Source  string // the upstream report: repository, PR or issue, file or commit
	Class   Class
	Domain  Domain
	Summary string // one line

	// Training bugs.
	Plan     string                           // the minimal plan it shows on (without its bug key)
	Programs func(c *simulate.Compiled) error // the rewrite (simulate.Variant.Programs)
	Applies  func(p plan.Plan) error          // why it cannot show on p (nil: it can)

	// Serving bugs: the config it shows on, with the bug switched on; Fixed switches it off.
	Config func() serving.Config
	Fixed  func(c *serving.Config)

	Expect   Expect
	Examples []string // names of the worked examples (Examples) that reproduce its numbers
}

// Signature is the shape of a diagnosis: what the first divergence looks like. The verifier's
// signatures (verify.SignatureKind, computed for every diagnosed tensor of any comparison) and
// three the catalogue's runs add.
type Signature string

const (
	SigIdenticalReceivers = Signature(verify.SigIdenticalReceivers)
	SigTP0Right           = Signature(verify.SigTP0Right)
	SigReplicaMismatch    = Signature(verify.SigReplicaMismatch)
	SigScaled             = Signature(verify.SigScaled)
	SigPositions          = Signature(verify.SigPositions)
	SigDiverged           = Signature(verify.SigDiverged)

	SigRecompute Signature = "recompute" // the forward agrees; recomputed activations do not, grads diverge
	SigRunError  Signature = "run-error" // the programs cannot run: the failing computation is named
	SigServing   Signature = "serving"   // the serving checks' diagnosis classes
)

// Expect is the diagnosis a bug must get on its minimal plan.
type Expect struct {
	// Verdict of the first divergence (a verify verdict), or "error" for a run the simulator
	// refuses with a named failure.
	Verdict string
	// First is the logical name of the first divergence; for a run error, the first traced
	// tensor the failing op would have produced.
	First     string
	Signature Signature
	// Feeds: for a run error, the norm whose input cannot be formed.
	Feeds string
	// Scaled lists tensors that must be exactly Factor × their reference (the named factor).
	Scaled []ScaledTensor
	// Positions: the sequence positions (dim 1) where First diverges; with ValidDepth k > 0 only
	// positions valid at MTP depth k (i+k+1 < end of i's sequence) count.
	Positions  []int
	ValidDepth int
	// Recomputed: activations whose recompute in the backward differs from their forward.
	Recomputed []string
	// Classes: the serving report's diagnosis classes.
	Classes []serving.Class
	// Shows is what an engineer sees, in words (for `spcheck bugs` and the docs).
	Shows string
}

// ScaledTensor is a tensor expected to be Factor × its reference; Why names the factor.
type ScaledTensor struct {
	Name   string
	Factor float64
	Why    string
}

// catalogue holds every bug by name.
var catalogue = func() map[string]*Bug {
	m := map[string]*Bug{}
	for _, b := range append(trainingBugs(), servingBugs()...) {
		if b.Name == "" || m[b.Name] != nil {
			panic(fmt.Sprintf("bugs: %q listed twice or unnamed", b.Name))
		}
		m[b.Name] = b
	}
	return m
}()

// Variant is a training bug's rewrite as the simulator (and the GPUs, which run the same
// programs) applies it; nil for a serving bug.
func (b *Bug) Variant() *simulate.Variant {
	if b.Domain != Training {
		return nil
	}
	return &simulate.Variant{Name: b.Name, Summary: b.Summary, Programs: b.Programs, Applies: b.Applies}
}

// Variants lists the training bugs' variants by name (what the fuzzer mutates with).
func Variants() []*simulate.Variant {
	var out []*simulate.Variant
	for _, name := range slices.Sorted(maps.Keys(catalogue)) {
		if v := catalogue[name].Variant(); v != nil {
			out = append(out, v)
		}
	}
	return out
}

// VariantOf resolves the bug a plan names (its bug key) to its variant: nil when it names
// none; an error naming the known training bugs when the catalogue has no such training bug.
func VariantOf(p plan.Plan) (*simulate.Variant, error) {
	if p.Bug == "" {
		return nil, nil
	}
	if b := catalogue[p.Bug]; b != nil && b.Domain == Training {
		return b.Variant(), nil
	}
	var names []string
	for _, v := range Variants() {
		names = append(names, v.Name)
	}
	return nil, fmt.Errorf("plan %q names bug variant %q, which is not a training bug of the catalogue (known: %s)", p.String(), p.Bug, strings.Join(names, ", "))
}

// All lists the catalogue: training bugs by class then name, then serving bugs.
func All() []*Bug {
	out := make([]*Bug, 0, len(catalogue))
	for _, b := range catalogue {
		out = append(out, b)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Domain != b.Domain {
			return a.Domain == Training
		}
		if a.Class != b.Class {
			return a.Class < b.Class
		}
		return a.Name < b.Name
	})
	return out
}

// Lookup returns the bug called name; the error lists the known names.
func Lookup(name string) (*Bug, error) {
	if b := catalogue[name]; b != nil {
		return b, nil
	}
	names := make([]string, 0, len(catalogue))
	for n := range catalogue {
		names = append(names, n)
	}
	slices.Sort(names)
	return nil, fmt.Errorf("no bug %q in the catalogue (known: %s)", name, strings.Join(names, ", "))
}

// MinimalPlan is the plan a training bug shows on, with its bug key.
func (b *Bug) MinimalPlan() plan.Plan {
	p, err := plan.Parse(b.Plan)
	if err != nil {
		panic(fmt.Sprintf("bugs: %s: minimal plan %q: %v", b.Name, b.Plan, err))
	}
	p.Bug = b.Name
	return p
}

// CanShow reports why the bug cannot show on p (nil: it can).
func (b *Bug) CanShow(p plan.Plan) error {
	if b.Applies == nil {
		return nil
	}
	return b.Applies(p)
}
