package verify

import (
	"encoding/binary"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Mechanism is what a failing tensor's data shows happened to it: the hypothesis, tested
// against the values, that explains the divergence.
type Mechanism string

const (
	MechNonFinite  Mechanism = "non-finite" // NaN or Inf on either side
	MechUnreduced  Mechanism = "unreduced"  // copies that sum (or average) to the reference: a missing reduction
	MechScaled     Mechanism = "scaled"     // a constant factor, per piece, per micro-batch or per sample
	MechRearranged Mechanism = "rearranged" // the reference's rows, elsewhere (moved, shifted, reversed, duplicated)
	MechTransposed Mechanism = "transposed" // a piece or the whole tensor holds the reference transposed
	MechLayout     Mechanism = "layout"     // the pieces match the reference read under another placement
	MechShape      Mechanism = "shape"      // shapes differ: padding leaked in, rows truncated, or a reshape
	MechPrecision  Mechanism = "precision"  // slightly off: a few tolerances, a factor near 1, or one rank's larger error
	MechReplica    Mechanism = "replica"    // copies that must agree do not, and nothing finer explains them
	MechLost       Mechanism = "lost"       // reference data no rank holds
	MechGarbage    Mechanism = "garbage"    // no hypothesis explains the values
)

// structural reports whether m names a mechanism of its own: a failing tensor whose structural
// mechanism differs from its root's is a root of its own (garbage and precision are what a
// consequence typically looks like).
func (m Mechanism) structural() bool {
	return m != MechGarbage && m != MechPrecision && m != MechLost && m != ""
}

// PrecisionUnits is the most tolerances a block may be off and still be "slightly off
// (precision)" rather than wrong: a rounding error made a few times larger (a missing upcast,
// a longer reduction) stays within ten tolerances, a wrong value is orders of magnitude off.
const PrecisionUnits = 10

// PrecisionRel bounds the rms error of a slightly-off block relative to its reference's rms:
// rounding compounded stays within a few percent even in bf16 (eps 2⁻⁸ ≈ 0.4%), while a wrong
// value is off by O(1). With PrecisionUnits it keeps the noise-calibrated low-precision
// tolerances (rtol ~0.3 in bf16) from calling garbage "slightly off".
const PrecisionRel = 0.05

// PrecisionFactor bounds a factor near 1 that counts as precision, not scaling: |c − 1| below
// it is a rounding difference compounded (×1.0001), above it a wrong constant (×1.01 is a
// 1% error no rounding makes).
const PrecisionFactor = 1e-3

// Factor is one scale factor of a diagnosis: Scale × the reference on the part At names
// ("mb0", "rank 1", "b0"), with P/Q its exact rational form when it has one (Q = 0: measured).
type Factor struct {
	At    string
	Scale float64
	P, Q  int64
}

// String is "×9/7", "×2" or "×0.7312" (measured).
func (f Factor) String() string { return formatFactor(f.Scale, f.P, f.Q) }

// Explanation is the mechanism that explains a failing tensor, in one plain sentence first and
// evidence after. It is worked out by testing hypotheses against the full values, in order:
// non-finite, unreduced, scaled, rearranged, another layout, precision, replica, lost, garbage.
type Explanation struct {
	Mechanism Mechanism
	// Sentence is the one-line explanation, starting with the tensor's name, e.g.
	// "grad/final_norm.weight: ranks 0 and 1 hold unreduced partial sums over tp (their sum is
	// the reference): a missing all-reduce".
	Sentence string
	// Evidence are further facts, one sentence each (the mapping of rearranged rows, the
	// overlapping region of a shape mismatch, per-rank errors).
	Evidence []string
	// Factors are the scale factors found (scaled, precision); one when the factor is common.
	Factors []Factor
	// Quantity is the plan or mesh quantity a common factor equals, when unambiguous ("tp",
	// "1/microbatches"); set once every tensor is explained (which tensors are scaled decides).
	Quantity string

	name string
	body string // the sentence without its name, before the quantity is known
	kind trace.Kind
}

// explainer holds what the hypotheses test: the tensor's pieces and its full values.
type explainer struct {
	res         *Result
	rows        []diagRow
	d           *Diagnosis
	ref, cand   []float64
	shape       []int
	rtol, floor float64
	cl          *layout
}

// explain tests the hypotheses in order and returns the first that explains the data.
func (e *explainer) explain() *Explanation {
	x := &Explanation{name: e.res.Name, kind: e.res.Kind}
	for _, h := range []func(*Explanation) bool{
		e.nonFinite, e.unreduced, e.scaled, e.rearranged, e.otherLayout, e.transposed, e.precision, e.replica, e.lost,
	} {
		if h(x) {
			x.render()
			return x
		}
	}
	x.Mechanism = MechGarbage
	x.body = fmt.Sprintf("%s wrong, and no rearrangement, reduction, scale or layout of the reference explains the values", who(e.wrongRanks()))
	x.render()
	return x
}

// render writes Sentence from the name, the body and the quantity.
func (x *Explanation) render() {
	x.Sentence = x.name + ": " + x.body
}

// wrongRanks are the ranks of the rows outside tolerance (-1 for an assembled sum).
func (e *explainer) wrongRanks() []int {
	var rs []int
	for _, r := range e.rows {
		if !r.OK() {
			rs = appendRank(rs, r.Rank)
		}
	}
	return rs
}

// who is "rank 1 is", "ranks 0 and 1 are", "the summed candidate is".
func who(ranks []int) string {
	switch {
	case len(ranks) == 0:
		return "nothing is"
	case len(ranks) == 1 && ranks[0] < 0:
		return "the summed candidate is"
	case len(ranks) == 1:
		return fmt.Sprintf("rank %d is", ranks[0])
	}
	return "ranks " + andList(ranks) + " are"
}

// andList is "0", "0 and 1", "0, 1 and 2".
func andList(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	if len(s) == 1 {
		return s[0]
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}

// nonFinite: NaN or Inf on either side; names the first on each side, with the rank.
func (e *explainer) nonFinite(x *Explanation) bool {
	ri := firstNonFinite(e.ref)
	rank, local, global, cv := -1, []int(nil), []int(nil), 0.0
	for _, r := range e.rows {
		i := firstNonFinite(r.actual)
		if i < 0 {
			continue
		}
		rank, cv = r.Rank, r.actual[i]
		local = unravel(i, r.box)
		global = make([]int, len(local))
		for d := range local {
			global[d] = local[d] + r.lo[d]
		}
		break
	}
	if ri < 0 && global == nil {
		return false
	}
	x.Mechanism = MechNonFinite
	at := func(rank int) string {
		if rank < 0 {
			return "the candidate"
		}
		return fmt.Sprintf("rank %d", rank)
	}
	switch {
	case ri >= 0 && global != nil:
		x.body = fmt.Sprintf("non-finite on both sides: %s in the reference at %s, %s on %s at %s (local %s)",
			valueWord(e.ref[ri]), indexString(unravel(ri, e.shape)), valueWord(cv), at(rank), indexString(global), indexString(local))
	case global != nil:
		x.body = fmt.Sprintf("%s on %s at %s (local %s), where the reference is finite", valueWord(cv), at(rank), indexString(global), indexString(local))
	default:
		x.body = fmt.Sprintf("the reference holds %s at %s; the candidate is finite there", valueWord(e.ref[ri]), indexString(unravel(ri, e.shape)))
	}
	return true
}

// unravel is flat index i of a row-major tensor of the given shape as a multi-index.
func unravel(i int, shape []int) []int {
	idx := make([]int, len(shape))
	for d := len(shape) - 1; d >= 0; d-- {
		if shape[d] > 0 {
			idx[d] = i % shape[d]
			i /= shape[d]
		}
	}
	return idx
}

func firstNonFinite(v []float64) int {
	for i, x := range v {
		if !isFinite(x) {
			return i
		}
	}
	return -1
}

func valueWord(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 1):
		return "+Inf"
	case math.IsInf(v, -1):
		return "-Inf"
	}
	return fmt.Sprint(v)
}

func indexString(idx []int) string {
	s := make([]string, len(idx))
	for i, v := range idx {
		s[i] = fmt.Sprint(v)
	}
	return "[" + strings.Join(s, ", ") + "]"
}

// copyGroups groups the rows holding the same cell (copies that should agree), in row order.
func copyGroups(rows []diagRow) [][]int {
	var groups [][]int
	at := map[string]int{}
	for i, r := range rows {
		g, ok := at[r.Region]
		if !ok {
			g = len(groups)
			at[r.Region] = g
			groups = append(groups, nil)
		}
		groups[g] = append(groups[g], i)
	}
	return groups
}

// unreduced: every group of copies sums (or averages) to its reference while no copy alone
// holds it: partial results that were never all-reduced.
func (e *explainer) unreduced(x *Explanation) bool {
	groups := copyGroups(e.rows)
	mean, any := false, false
	var ranks []int
	axes := map[string]bool{}
	for k, avg := range []bool{false, true} {
		ok := true
		ranks, any = nil, false
		clear(axes)
		for _, g := range groups {
			if len(g) < 2 {
				if !e.rows[g[0]].OK() {
					ok = false
				}
				continue
			}
			wrong := false
			for _, i := range g {
				wrong = wrong || !e.rows[i].OK()
			}
			if !wrong {
				continue
			}
			if identicalCopies(e.rows, g) {
				ok = false
				break
			}
			over, found := reducedOver(e.rows, g, avg, e.rtol, e.floor)
			if !found {
				ok = false
				break
			}
			any = true
			for _, i := range g {
				ranks = appendRank(ranks, e.rows[i].Rank)
			}
			for _, a := range over {
				axes[a] = true
			}
		}
		if ok && any {
			mean = k == 1
			break
		}
		any = false
	}
	if !any {
		return false
	}
	slices.Sort(ranks)
	over := "over ranks"
	if len(axes) > 0 {
		names := make([]string, 0, len(axes))
		for a := range axes {
			names = append(names, a)
		}
		slices.Sort(names)
		over = "over " + strings.Join(names, ",")
	}
	x.Mechanism = MechUnreduced
	if mean {
		x.body = fmt.Sprintf("ranks %s hold unreduced partial values %s (their mean is the reference): a missing all-reduce (average)", andList(ranks), over)
	} else {
		x.body = fmt.Sprintf("ranks %s hold unreduced partial sums %s (their sum is the reference): a missing all-reduce", andList(ranks), over)
	}
	return true
}

// sumsTo reports whether the copies g of rows sum (avg: average) to their reference, within the
// tolerance of a sum of their magnitudes, while none of them holds it alone.
func sumsTo(rows []diagRow, g []int, avg bool, rtol, floor float64) bool {
	exp := rows[g[0]].expected
	n := float64(len(g))
	for j, ev := range exp {
		var s, mag float64
		for _, i := range g {
			a := rows[i].actual[j]
			s += a
			mag += math.Abs(a)
		}
		if avg {
			s, mag = s/n, mag/n
		}
		if !isFinite(s) || math.Abs(s-ev) > rtol*(mag+math.Abs(ev)+floor) {
			return false
		}
	}
	return true
}

// reducedOver finds the axes over which the copies g are partial results of the reference: all
// of them together, or, axis by axis, every subgroup of copies that differ only on that axis
// (the reduction over the other axes did run).
func reducedOver(rows []diagRow, g []int, avg bool, rtol, floor float64) ([]string, bool) {
	axes := differingAxes(rows, g)
	if sumsTo(rows, g, avg, rtol, floor) {
		return axes, true
	}
	for _, a := range axes {
		sub := map[string][]int{}
		var keys []string
		for _, i := range g {
			var k []string
			for _, c := range rows[i].Coord {
				if c.Axis != a {
					k = append(k, fmt.Sprint(c))
				}
			}
			key := strings.Join(k, ",")
			if sub[key] == nil {
				keys = append(keys, key)
			}
			sub[key] = append(sub[key], i)
		}
		ok := true
		for _, key := range keys {
			sg := sub[key]
			ok = ok && len(sg) > 1 && sumsTo(rows, sg, avg, rtol, floor)
		}
		if ok {
			return []string{a}, true
		}
	}
	return nil, false
}

// identicalCopies: the copies g hold the same values (a scale, not partial sums, if anything).
func identicalCopies(rows []diagRow, g []int) bool {
	for _, i := range g[1:] {
		if !slices.Equal(rows[i].actual, rows[g[0]].actual) {
			return false
		}
	}
	return true
}

// differingAxes are the mesh axes on which the copies g sit at different coordinates.
func differingAxes(rows []diagRow, g []int) []string {
	var out []string
	for _, a := range rows[g[0]].Coord {
		for _, i := range g[1:] {
			if v, ok := rows[i].Coord.Of(a.Axis); ok && v != a.Index {
				out = append(out, a.Axis)
				break
			}
		}
	}
	return out
}

// replica: copies disagree and nothing finer explained them.
func (e *explainer) replica(x *Explanation) bool {
	if e.res.Verdict != ReplicaMismatch {
		return false
	}
	x.Mechanism = MechReplica
	var parts []string
	for _, dis := range e.res.CandReplicas {
		var gs []string
		for _, g := range dis.Groups {
			gs = append(gs, fmt.Sprint(g))
		}
		parts = append(parts, strings.Join(gs, " vs "))
	}
	x.body = fmt.Sprintf("copies that must agree do not (ranks %s), and neither their sum, their mean nor a scale is the reference", strings.Join(parts, "; "))
	if len(parts) == 0 {
		x.body = "the reference's own copies disagree"
	}
	return true
}

// lost: reference blocks that no rank holds, by the block diagnosis.
func (e *explainer) lost(x *Explanation) bool {
	if len(e.d.Lost) == 0 {
		return false
	}
	x.Mechanism = MechLost
	var ls []string
	for _, l := range e.d.Lost {
		ls = append(ls, fmt.Sprintf("rank %d's block %d", l.Rank, l.Block))
	}
	x.body = fmt.Sprintf("%s wrong, matching no reference data: %s of the reference held by no rank (lost: %s)", who(e.wrongRanks()), Plural(len(e.d.Lost), "block"), strings.Join(ls, ", "))
	return true
}

// precision: every wrong row within PrecisionUnits tolerances: slightly off, not wrong.
func (e *explainer) precision(x *Explanation) bool {
	worst := 0.0
	var ranks []int
	for _, r := range e.rows {
		if r.OK() {
			continue
		}
		if r.MaxUnits > PrecisionUnits || relErr(r.actual, r.expected) > PrecisionRel {
			return false
		}
		worst = max(worst, r.MaxUnits)
		ranks = appendRank(ranks, r.Rank)
	}
	if ranks == nil {
		return false
	}
	x.Mechanism = MechPrecision
	x.body = fmt.Sprintf("%s slightly off (precision): at most %.3g× the tolerance, no structure beyond rounding", who(ranks), worst)
	return true
}

// slightlyOff reports whether a is its reference e off by precision only: within PrecisionUnits
// tolerances everywhere, or a multiple of it by a factor within PrecisionFactor of 1.
func slightlyOff(a, e []float64, rtol, floor float64) bool {
	within := relErr(a, e) <= PrecisionRel
	for i, x := range e {
		if !within || units(a[i], x, rtol, floor) > PrecisionUnits {
			within = false
			break
		}
	}
	if within {
		return true
	}
	c, _, _, ok := fitFactor(a, e, rtol, floor)
	return ok && math.Abs(c-1) <= PrecisionFactor
}

// relErr is rms(a − e) / rms(e) (+Inf when e is zero and a is not, or anything is non-finite).
func relErr(a, e []float64) float64 {
	var dd, ee float64
	for i, x := range e {
		d := a[i] - x
		dd += d * d
		ee += x * x
	}
	switch {
	case !isFinite(dd) || !isFinite(ee):
		return math.Inf(1)
	case dd == 0:
		return 0
	case ee == 0:
		return math.Inf(1)
	}
	return math.Sqrt(dd / ee)
}

// explainReport finishes the explanations once every tensor is diagnosed: the bias of
// low-precision shards turns an unexplained tensor (garbage, or "lost" blocks that are its own
// data with a larger error) into a precision finding, and scale
// factors are named after a plan quantity where the scaled tensors make it unambiguous.
func (c *comparer) explainReport(rep *Report) {
	for _, b := range rep.Bias {
		for _, res := range rep.Results {
			x := res.Explanation
			if res.Name != b.Name || x == nil || (x.Mechanism != MechGarbage && x.Mechanism != MechPrecision && x.Mechanism != MechLost) {
				continue
			}
			x.Mechanism = MechPrecision
			x.body = fmt.Sprintf("%s slightly off (precision): its error is %.1f× its peers' on %s", who(b.Ranks), b.Ratio(), b.Cell)
			x.render()
		}
	}
	nameFactors(rep, c.quantities())
}

// hasNonFinite reports whether raw canonical bytes of dtype d hold a NaN or an Inf: an exponent
// field of all ones. Bitwise-identical tensors are otherwise never decoded, and NaN on both
// sides must fail, not pass as identical; so this runs on every identical float tensor and is
// branch-free: per 64-bit word, each lane's exponent bits plus one carry into the lane's (masked
// off) sign bit exactly when they are all ones (~6 GB/s, a fraction of MD5's cost).
func hasNonFinite(d tensor.DType, raw []byte) bool {
	var exp, one, top uint64
	switch d {
	case tensor.F64:
		exp, one, top = 0x7ff0000000000000, 0x0010000000000000, 0x8000000000000000
	case tensor.F32:
		exp, one, top = 0x7f8000007f800000, 0x0080000000800000, 0x8000000080000000
	case tensor.BF16:
		exp, one, top = 0x7f807f807f807f80, 0x0080008000800080, 0x8000800080008000
	case tensor.F16:
		exp, one, top = 0x7c007c007c007c00, 0x0400040004000400, 0x8000800080008000
	default:
		return false
	}
	le := binary.LittleEndian
	var acc uint64
	i := 0
	for ; i+32 <= len(raw); i += 32 {
		acc |= (le.Uint64(raw[i:])&exp + one) | (le.Uint64(raw[i+8:])&exp + one) |
			(le.Uint64(raw[i+16:])&exp + one) | (le.Uint64(raw[i+24:])&exp + one)
	}
	for ; i+8 <= len(raw); i += 8 {
		acc |= le.Uint64(raw[i:])&exp + one
	}
	if i < len(raw) { // a tail shorter than a word, padded with zeros (finite)
		var tail [8]byte
		copy(tail[:], raw[i:])
		acc |= le.Uint64(tail[:])&exp + one
	}
	return acc&top != 0
}
