package verify

// Verdict is the outcome for one logical tensor.
type Verdict string

const (
	Identical       Verdict = "identical"        // bitwise equal canonical bytes
	Close           Verdict = "close"            // every element within tolerance
	Diverged        Verdict = "diverged"         // some element outside tolerance
	Missing         Verdict = "missing"          // in the reference, not in the candidate
	Extra           Verdict = "extra"            // in the candidate, not in the reference
	ShapeMismatch   Verdict = "shape mismatch"   // global shapes differ
	ReplicaMismatch Verdict = "replica mismatch" // copies that must agree do not
	NonFinite       Verdict = "non-finite"       // NaN/Inf on either side, or on both (a NaN in the reference is a bug too)
)

// Verdicts lists every verdict in the order reports count them.
var Verdicts = []Verdict{Identical, Close, Diverged, NonFinite, ReplicaMismatch, ShapeMismatch, Missing, Extra}

// Numerical reports whether v is a numerical failure: one that can be the first divergence.
func (v Verdict) Numerical() bool {
	return v == Diverged || v == NonFinite || v == ReplicaMismatch || v == ShapeMismatch
}

// Passed reports whether v is a pass.
func (v Verdict) Passed() bool { return v == Identical || v == Close }

// Role says whether a failing tensor is where the divergence starts or follows from it.
type Role string

const (
	Root        Role = "root"        // a failure at the earliest failing execution order
	Independent Role = "independent" // a later failure that is a root of its own (see Report.Roots)
	Consequence Role = "consequence" // a failure later in execution order that can follow from a root
)
