package verify

import (
	"fmt"
	"math"
	"strings"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// AxisIndex is a piece's index on one mesh axis.
type AxisIndex struct {
	Axis  string
	Index int
}

// Coord is a piece's position on the mesh axes of size > 1, in mesh order (empty for an
// unsplit tensor and for the assembled sum of a partial one).
type Coord []AxisIndex

// Of is the piece's index on axis (ok false when the coordinate does not name the axis).
func (c Coord) Of(axis string) (int, bool) {
	for _, a := range c {
		if a.Axis == axis {
			return a.Index, true
		}
	}
	return 0, false
}

// String is "pp=1,tp=0".
func (c Coord) String() string {
	parts := make([]string, len(c))
	for i, a := range c {
		parts[i] = fmt.Sprintf("%s=%d", a.Axis, a.Index)
	}
	return strings.Join(parts, ",")
}

// SignatureKind is the shape of a failing tensor's divergence.
type SignatureKind string

const (
	SigIdenticalReceivers SignatureKind = "identical-receivers" // every piece holds the same data though the reference pieces differ; blocks lost
	SigTP0Right           SignatureKind = "tp0-right"           // TP rank 0's pieces right, every other TP rank's wrong
	SigReplicaMismatch    SignatureKind = "replica-mismatch"    // copies that must agree do not
	SigScaled             SignatureKind = "scaled"              // every wrong block is one factor × its reference
	SigPositions          SignatureKind = "positions"           // wrong at some sequence positions only, nothing rearranged or scaled
	SigDiverged           SignatureKind = "diverged"            // a value differs, without a finer structure
)

// MultipleRelTol is how close a tensor must be to c × its reference to count as a multiple of
// it, in norm (‖a − c·r‖ ≤ MultipleRelTol·‖a‖): far above float64 rounding of small models
// (~1e-15), far below any corruption that is not a scale (O(1)).
const MultipleRelTol = 1e-9

// Signature is the shape of a failing tensor's divergence, worked out from its block diagnosis
// and its full values (not the abbreviated values a report shows).
type Signature struct {
	Kind SignatureKind
	// Scale is SigScaled's factor: every wrong block is Scale × its reference block; ScaleName
	// the quantity it equals ("tp", "1/microbatches"), "" if none.
	Scale     float64
	ScaleName string
	// Multiple: the whole tensor is Factor × its reference (within MultipleTol), whatever its
	// Kind; Factor is the least-squares factor.
	Multiple bool
	Factor   float64
	// MultipleTol is the relative norm tolerance Multiple was judged at: MultipleRelTol, or in
	// low precision half the tensor's per-element rtol (the residual of a scaled tensor is its
	// noise, which that bounds).
	MultipleTol float64
	// Lost counts the reference blocks no piece holds.
	Lost int
	// Positions are the sequence positions (dim 1 of an input, activation or activation
	// gradient [batch, seq, …]) where some element is outside tolerance.
	Positions []int
}

// String is the signature in a few words: "identical receivers (2 reference blocks lost)",
// "scaled ×2 (tp)", "TP rank 0 right, the other TP ranks wrong", "wrong at positions [3]".
func (s *Signature) String() string {
	switch s.Kind {
	case SigIdenticalReceivers:
		return fmt.Sprintf("identical receivers (%s lost)", Plural(s.Lost, "reference block"))
	case SigTP0Right:
		return "TP rank 0 right, the other TP ranks wrong"
	case SigReplicaMismatch:
		return "replica mismatch"
	case SigScaled:
		return "scaled " + FormatScale(s.Scale, s.ScaleName)
	case SigPositions:
		return fmt.Sprintf("wrong at positions %v", s.Positions)
	}
	return "diverged (no finer structure)"
}

// signatureOf classifies a diagnosed tensor; ref and cand are its full global values.
func signatureOf(verdict Verdict, kind trace.Kind, shape []int, d *Diagnosis, rows []diagRow, ref, cand []float64, rtol, floor float64) *Signature {
	s := &Signature{Kind: SigDiverged, Lost: len(d.Lost), MultipleTol: max(MultipleRelTol, rtol/2)}
	s.Factor, s.Multiple = multipleOf(cand, ref, s.MultipleTol)
	if seqShaped(kind, shape) {
		s.Positions = wrongPositions(shape, ref, cand, rtol, floor)
	}
	scale, name, scaled := blockScale(d)
	switch {
	case verdict == ReplicaMismatch:
		s.Kind = SigReplicaMismatch
	case identicalReceivers(rows, d):
		s.Kind = SigIdenticalReceivers
	case scaled:
		s.Kind, s.Scale, s.ScaleName = SigScaled, scale, name
	case tp0Right(d):
		s.Kind = SigTP0Right
	case onlyGarbage(d) && len(s.Positions) > 0 && len(s.Positions) < shape[1]:
		s.Kind = SigPositions
	}
	return s
}

// identicalReceivers: several pieces, all holding the same values though their references
// differ, and reference blocks lost — a gathered tensor every receiver rebuilt alike from the
// wrong pieces.
func identicalReceivers(rows []diagRow, d *Diagnosis) bool {
	return len(rows) >= 2 && len(d.Lost) > 0 &&
		allSame(rows, func(r diagRow) []float64 { return r.actual }) &&
		!allSame(rows, func(r diagRow) []float64 { return r.expected })
}

// blockScale is the common factor of the wrong blocks, and its name (ok false unless every
// block is correct or scaled, by one factor).
func blockScale(d *Diagnosis) (float64, string, bool) {
	var c float64
	var name string
	for _, r := range d.Rows {
		for _, b := range r.Blocks {
			switch {
			case b.Class == Correct:
			case b.Class == Scaled && (c == 0 || c == b.Scale):
				c, name = b.Scale, b.ScaleName
			default:
				return 0, "", false
			}
		}
	}
	return c, name, c != 0
}

// tp0Right: the pieces on TP rank 0 are right, those on every other TP rank wrong.
func tp0Right(d *Diagnosis) bool {
	seen := false
	for _, r := range d.Rows {
		t, ok := r.Coord.Of("tp")
		if !ok || (t == 0) != r.OK() {
			return false
		}
		seen = seen || t > 0
	}
	return seen
}

// onlyGarbage: every wrong block matches nothing (no rearrangement, duplicate or scale explains it).
func onlyGarbage(d *Diagnosis) bool {
	for _, r := range d.Rows {
		for _, b := range r.Blocks {
			if b.Class != Correct && b.Class != Garbage {
				return false
			}
		}
	}
	return true
}

// seqShaped reports whether a tensor is [batch, seq, …] by the trace's convention: an input,
// activation or activation gradient of rank ≥ 2.
func seqShaped(kind trace.Kind, shape []int) bool {
	return len(shape) >= 2 && (kind == trace.Input || kind == trace.Activation || kind == trace.ActivationGrad)
}

// wrongPositions lists the positions i (dim 1) where some element of cand[:, i, …] is outside
// the tolerance rtol·(|ref| + floor).
func wrongPositions(shape []int, ref, cand []float64, rtol, floor float64) []int {
	b, s := shape[0], shape[1]
	inner := tensor.Numel(shape) / max(b*s, 1)
	var out []int
	for i := 0; i < s; i++ {
	rows:
		for row := 0; row < b; row++ {
			for j := 0; j < inner; j++ {
				k := (row*s+i)*inner + j
				if units(cand[k], ref[k], rtol, floor) > 1 {
					out = append(out, i)
					break rows
				}
			}
		}
	}
	return out
}

// multipleOf is c with cand = c·ref in norm (within relative tolerance tol), ok false when cand
// is not a multiple of ref.
func multipleOf(cand, ref []float64, tol float64) (float64, bool) {
	var ar, rr, aa float64
	for i, x := range ref {
		ar += cand[i] * x
		rr += x * x
		aa += cand[i] * cand[i]
	}
	if rr == 0 || math.IsNaN(ar+rr+aa) || math.IsInf(ar+rr+aa, 0) {
		return 0, false
	}
	c := ar / rr
	var res float64
	for i, x := range ref {
		d := cand[i] - c*x
		res += d * d
	}
	return c, math.Sqrt(res) <= tol*math.Sqrt(aa)
}
