package verify

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Row-granular matching. Every candidate piece is cut into slices along one dim (rows along
// dim 0, sequence positions along dim 1, …) and each slice is looked up among the reference's
// slices of the same extent in the other dims: by the bits of its values first, then by its sum
// (sorted, so a lookup is a binary search and a bounded probe), so matching stays near-linear
// in the tensor's size — never all pairs.

// maxProbe bounds the reference slices whose values are compared with one candidate slice when
// their sums are within tolerance of each other.
const maxProbe = 64

// Slice match outcomes besides a reference index.
const (
	sliceNone  = -1 // matches no reference slice
	sliceZeros = -2 // all zeros where the reference is not
)

// sliceIndex is the reference's slices along one dim over one extent of the other dims: their
// sums, sorted, and the values themselves read on demand (no copy per slice).
type sliceIndex struct {
	box          []float64 // the reference over the extent, the dim whole
	size         []int
	d            int
	sums, absums []float64
	order        []int // slice indices by sum
	maxAbs       float64
	buf          []float64
}

// gatherBox copies the box [lo, lo+size) of a row-major tensor of the given shape.
func gatherBox(src []float64, shape, lo, size []int) []float64 {
	out := make([]float64, tensor.Numel(size))
	boxRuns(shape, lo, size, zeros(len(size)), size, func(g, loc, n int) { copy(out[loc:loc+n], src[g:g+n]) })
	return out
}

// sliceOf is slice j along dim d of a row-major box of the given size, in buf when it is not
// contiguous.
func sliceOf(box []float64, size []int, d, j int, buf []float64) []float64 {
	outer, inner := tensor.Numel(size[:d]), tensor.Numel(size[d+1:])
	if outer == 1 {
		return box[j*inner : (j+1)*inner]
	}
	buf = buf[:0]
	for o := 0; o < outer; o++ {
		at := (o*size[d] + j) * inner
		buf = append(buf, box[at:at+inner]...)
	}
	return buf
}

func newSliceIndex(ref []float64, shape, lo, size []int, d int) *sliceIndex {
	lo2, size2 := slices.Clone(lo), slices.Clone(size)
	lo2[d], size2[d] = 0, shape[d]
	ix := &sliceIndex{box: gatherBox(ref, shape, lo2, size2), size: size2, d: d,
		sums: make([]float64, shape[d]), absums: make([]float64, shape[d]), order: make([]int, shape[d])}
	n, inner := shape[d], tensor.Numel(size2[d+1:])
	for at := 0; at < len(ix.box); at += inner {
		j := at / inner % n
		for _, x := range ix.box[at : at+inner] {
			ix.sums[j] += x
			ix.absums[j] += math.Abs(x)
		}
	}
	for j := range ix.order {
		ix.order[j] = j
		ix.maxAbs = max(ix.maxAbs, ix.absums[j])
	}
	slices.SortStableFunc(ix.order, func(a, b int) int { return cmp.Compare(ix.sums[a], ix.sums[b]) })
	return ix
}

// vals is reference slice j (valid until the next call).
func (ix *sliceIndex) vals(j int) []float64 {
	ix.buf = sliceOf(ix.box, ix.size, ix.d, j, ix.buf)
	return ix.buf
}

// find is the reference slice that v holds (own first), sliceZeros or sliceNone.
func (ix *sliceIndex) find(v []float64, own int, rtol, floor float64) int {
	if own >= 0 && own < len(ix.sums) && closeValues(v, ix.vals(own), rtol, floor) {
		return own
	}
	var s, a float64
	for _, x := range v {
		s += x
		a += math.Abs(x)
	}
	if a == 0 {
		return sliceZeros
	}
	if !isFinite(s) {
		return sliceNone
	}
	bound := rtol * (ix.maxAbs + float64(len(v))*floor)
	lo := sort.Search(len(ix.order), func(k int) bool { return ix.sums[ix.order[k]] >= s-bound })
	for k, probes := lo, 0; k < len(ix.order) && probes < maxProbe && ix.sums[ix.order[k]] <= s+bound; k, probes = k+1, probes+1 {
		if j := ix.order[k]; ix.absums[j] > 0 && closeValues(v, ix.vals(j), rtol, floor) {
			return j
		}
	}
	return sliceNone
}

// dimMatch is every piece's slices along one dim, matched.
type dimMatch struct {
	d                  int
	hits               [][]int // per row, per slice: the global reference index, sliceZeros or sliceNone
	moved, none, zeros int     // slices of wrong rows
	lost               []int   // reference slices no piece holds
}

// matchDim matches every wrong row's slices along dim d; nil when the slices are too small to
// say anything (fewer than 2 elements) or a piece is segmented.
func (e *explainer) matchDim(d int) *dimMatch {
	m := &dimMatch{d: d, hits: make([][]int, len(e.rows))}
	type extent struct {
		key           string
		ix            *sliceIndex
		held, covered []bool // per reference index: held by some piece, covered by some piece's extent
	}
	var exts []*extent // few: one per extent of the other dims
	var cbuf []float64
	for i, r := range e.rows {
		if r.box == nil || tensor.Numel(r.box)/max(r.box[d], 1) < 2 {
			return nil
		}
		key := otherKey(r.lo, r.box, d)
		var x *extent
		for _, y := range exts {
			if y.key == key {
				x = y
				break
			}
		}
		if x == nil {
			x = &extent{key: key, ix: newSliceIndex(e.ref, e.shape, r.lo, r.box, d), held: make([]bool, e.shape[d]), covered: make([]bool, e.shape[d])}
			exts = append(exts, x)
		}
		hits := make([]int, r.box[d])
		for j := range hits {
			g := r.lo[d] + j
			x.covered[g] = true
			cbuf = sliceOf(r.actual, r.box, d, j, cbuf)
			h := x.ix.find(cbuf, g, e.rtol, e.floor)
			hits[j] = h
			if h >= 0 {
				x.held[h] = true
			}
			if r.OK() {
				continue
			}
			switch {
			case h == sliceNone:
				m.none++
			case h == sliceZeros:
				m.zeros++
			case h != g:
				m.moved++
			}
		}
		m.hits[i] = hits
	}
	for _, x := range exts {
		for j := range x.ix.sums {
			if x.covered[j] && x.ix.absums[j] > 0 && !x.held[j] {
				m.lost = append(m.lost, j)
			}
		}
	}
	slices.Sort(m.lost)
	m.lost = slices.Compact(m.lost)
	return m
}

// otherKey identifies a piece's extent in every dim but d.
func otherKey(lo, box []int, d int) string {
	b := make([]byte, 0, 8*len(lo))
	for i := range lo {
		if i != d {
			b = strconv.AppendInt(b, int64(lo[i]), 10)
			b = append(b, ':')
			b = strconv.AppendInt(b, int64(box[i]), 10)
		}
		b = append(b, ',')
	}
	return string(b)
}

// dimLabel names dim d for a mapping: b and s for a [batch, seq, …] tensor, else d0, d1, ….
func (e *explainer) dimLabel(d int) string {
	if seqShaped(e.res.Kind, e.shape) && d < 2 {
		return []string{"b", "s"}[d]
	}
	return fmt.Sprintf("d%d", d)
}

// rearranged: the wrong pieces hold the reference's slices along some dim at other positions
// (moved, shifted, reversed, duplicated), with what no piece holds named lost.
func (e *explainer) rearranged(x *Explanation) bool {
	var best *dimMatch
	for d := range e.shape {
		m := e.matchDim(d)
		if m == nil || m.moved == 0 || m.none > m.moved {
			continue
		}
		if best == nil || m.none+m.zeros < best.none+best.zeros || (m.none+m.zeros == best.none+best.zeros && m.moved < best.moved) {
			best = m
		}
	}
	if best == nil {
		return e.blockRearranged(x)
	}
	lab := e.dimLabel(best.d)
	type pair struct{ g, src int }
	var pairs []pair
	type srcKey struct {
		other string // the other dims' extent
		src   int    // a reference index along the dim
	}
	held := map[srcKey]map[int]bool{} // → the positions holding it
	var groups []string               // each distinct row description, in row order
	ranksOf := map[string][]int{}
	for i, r := range e.rows {
		if r.OK() {
			continue
		}
		other := otherKey(r.lo, r.box, best.d)
		hits := best.hits[i]
		var runs []string
		for j := 0; j < len(hits); {
			g, h := r.lo[best.d]+j, hits[j]
			k := j + 1
			step := 0
			if h >= 0 && k < len(hits) && hits[k] >= 0 && (hits[k] == h+1 || hits[k] == h-1) {
				step = hits[k] - h
			}
			for k < len(hits) && (h == sliceZeros && hits[k] == sliceZeros || h >= 0 && step != 0 && hits[k] == h+step*(k-j)) {
				k++
			}
			for q := j; q < k; q++ {
				if src := hits[q]; src >= 0 {
					pairs = append(pairs, pair{r.lo[best.d] + q, src})
					key := srcKey{other, src}
					if held[key] == nil {
						held[key] = map[int]bool{}
					}
					held[key][r.lo[best.d]+q] = true
				}
			}
			span := fmt.Sprintf("rows %s=%d:%d", lab, g, r.lo[best.d]+k)
			switch {
			case h == g || h == sliceNone:
				k = j + 1
			case h == sliceZeros:
				runs = append(runs, span+" hold zeros")
			case step < 0:
				runs = append(runs, fmt.Sprintf("%s hold reference %s=%d:%d reversed", span, lab, h-(k-j-1), h+1))
			default:
				runs = append(runs, fmt.Sprintf("%s hold reference %s=%d:%d", span, lab, h, h+(k-j)))
			}
			j = k
		}
		desc := strings.Join(runs, ", ")
		if _, seen := ranksOf[desc]; !seen {
			groups = append(groups, desc)
		}
		ranksOf[desc] = appendRank(ranksOf[desc], r.Rank)
	}
	var runs []string
	for _, g := range groups {
		if g != "" {
			runs = append(runs, strings.TrimSuffix(strings.TrimSuffix(who(ranksOf[g]), " is"), " are")+": "+g)
		}
	}
	var dups []int
	for key, gs := range held {
		if len(gs) > 1 {
			dups = append(dups, key.src)
		}
	}
	slices.Sort(dups)
	dups = slices.Compact(dups)
	n := e.shape[best.d]
	pattern := ""
	pairs = slices.DeleteFunc(pairs, func(p pair) bool { return p.src == p.g })
	if len(pairs) > 1 { // one moved row is no pattern
		k := pairs[0].src - pairs[0].g
		shift, rot, rev := true, true, true
		for _, p := range pairs {
			shift = shift && p.src-p.g == k
			rot = rot && p.src == ((p.g+k)%n+n)%n
			rev = rev && p.src == n-1-p.g
		}
		switch {
		case rev:
			pattern = fmt.Sprintf(" (reversed along %s)", lab)
		case shift && k != 0:
			pattern = fmt.Sprintf(" (shifted by %+d along %s)", k, lab)
		case rot && k != 0:
			pattern = fmt.Sprintf(" (rotated by %d along %s)", (k%n+n)%n, lab)
		}
	}
	x.Mechanism = MechRearranged
	x.body = fmt.Sprintf("the reference's rows along %s, at other positions%s: %s", lab, pattern, strings.Join(firstN(runs, 3), "; "))
	x.Evidence = append(x.Evidence, runs...)
	if len(dups) > 0 {
		x.body += fmt.Sprintf("; reference %s held twice", spans(lab, dups))
	}
	if len(best.lost) > 0 {
		x.body += fmt.Sprintf("; reference %s held by no rank (lost)", spans(lab, best.lost))
	}
	if best.none > 0 {
		x.body += fmt.Sprintf("; %s match nothing", Plural(best.none, "row"))
	}
	return true
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(slices.Clone(s[:n]), fmt.Sprintf("… (%d more)", len(s)-n))
	}
	return s
}

// spans prints sorted indices as runs: "s=0:4,6:7".
func spans(lab string, idx []int) string {
	var parts []string
	for i := 0; i < len(idx); {
		j := i + 1
		for j < len(idx) && idx[j] == idx[j-1]+1 {
			j++
		}
		parts = append(parts, fmt.Sprintf("%d:%d", idx[i], idx[j-1]+1))
		i = j
	}
	return lab + "=" + strings.Join(parts, ",")
}

// blockRearranged: the block diagnosis found whole pieces or flat chunks elsewhere.
func (e *explainer) blockRearranged(x *Explanation) bool {
	var runs []string
	for _, r := range e.d.Rows {
		for j, b := range r.Blocks {
			if b.Source == nil {
				continue
			}
			runs = append(runs, fmt.Sprintf("%s block %d holds rank %d's block %d (%s)", rankLabel(r.Rank), j, b.Source.Rank, b.Source.Block, b.Class))
		}
	}
	if len(runs) == 0 {
		return false
	}
	x.Mechanism = MechRearranged
	unit := "pieces"
	if e.d.Level == LevelChunk {
		unit = fmt.Sprintf("flat 1/%d chunks", e.d.Parts)
	}
	x.body = fmt.Sprintf("the reference's %s, at other positions: %s", unit, strings.Join(firstN(runs, 3), "; "))
	if len(e.rows) > 1 && allSame(e.rows, func(r diagRow) []float64 { return r.actual }) {
		x.body = fmt.Sprintf("every rank holds the same data, built from the reference's %s of other positions (%s)", unit, strings.Join(firstN(runs, 3), "; "))
	}
	if len(e.d.Lost) > 0 {
		x.body += fmt.Sprintf("; %s held by no rank (lost)", Plural(len(e.d.Lost), "reference block"))
	}
	x.Evidence = runs
	return true
}

// transposed: a wrong piece (square in its last two dims) holds its reference transposed.
func (e *explainer) transposed(x *Explanation) bool {
	var ranks []int
	for _, r := range e.rows {
		if r.OK() {
			continue
		}
		nd := len(r.box)
		if nd < 2 || r.box[nd-1] != r.box[nd-2] || r.box[nd-1] < 2 || !closeValues(r.actual, transposeLast(r.expected, r.box), e.rtol, e.floor) {
			return false
		}
		ranks = appendRank(ranks, r.Rank)
	}
	if ranks == nil {
		return false
	}
	x.Mechanism = MechTransposed
	x.body = fmt.Sprintf("%s hold their reference transposed (last two dims swapped)", strings.TrimSuffix(strings.TrimSuffix(who(ranks), " is"), " are"))
	return true
}

// transposeLast swaps the last two dims of a row-major tensor of the given shape.
func transposeLast(v []float64, shape []int) []float64 {
	nd := len(shape)
	r, c := shape[nd-2], shape[nd-1]
	out := make([]float64, len(v))
	for b := 0; b < len(v); b += r * c {
		for i := 0; i < r; i++ {
			for j := 0; j < c; j++ {
				out[b+j*r+i] = v[b+i*c+j]
			}
		}
	}
	return out
}

// otherLayout: the trace shards the tensor on one dim, and every piece's values are the
// reference's shard on another dim (its bytes read in the piece's stored order).
func (e *explainer) otherLayout(x *Explanation) bool {
	if e.cl == nil || e.cl.partial {
		return false
	}
	var ap *trace.AxisPlace
	for i := range e.cl.place {
		if p := e.cl.place[i]; p.Kind == trace.Shard {
			if ap != nil || p.Block != 0 || p.Segments != nil {
				return false
			}
			ap = &e.cl.place[i]
		}
	}
	if ap == nil {
		return false
	}
	n := e.cl.mesh.Size(ap.Axis)
	for d := range e.shape {
		if d == ap.Dim || e.shape[d]%n != 0 {
			continue
		}
		all := true
		for _, r := range e.rows {
			k, ok := r.Coord.Of(ap.Axis)
			if !ok {
				all = false
				break
			}
			lo, size := zeros(len(e.shape)), slices.Clone(e.shape)
			size[d] = e.shape[d] / n
			lo[d] = k * size[d]
			if exp := gatherBox(e.ref, e.shape, lo, size); len(exp) != len(r.actual) || !closeValues(r.actual, exp, e.rtol, e.floor) {
				all = false
				break
			}
		}
		if all {
			x.Mechanism = MechLayout
			x.body = fmt.Sprintf("the pieces match the reference read as %s=shard(%d); the trace says %s", ap.Axis, d, ap.String())
			return true
		}
	}
	return false
}

// explainShape explains a shape mismatch: the overlapping region compared (padding that leaked
// in, rows truncated), a reshape, or a transpose.
func explainShape(res *Result, ref, cand []float64, rtol, floor float64) *Explanation {
	x := &Explanation{name: res.Name, kind: res.Kind, Mechanism: MechShape}
	rs, cs := res.RefShape, res.CandShape
	defer x.render()
	if floor == 0 {
		var ss float64
		for _, v := range ref {
			if isFinite(v) {
				ss += v * v
			}
		}
		floor = math.Sqrt(ss / float64(max(len(ref), 1)))
	}
	if len(rs) == len(cs) {
		ov := make([]int, len(rs))
		for d := range rs {
			ov[d] = min(rs[d], cs[d])
		}
		z := zeros(len(rs))
		if tensor.Numel(ov) > 0 && closeValues(gatherBox(cand, cs, z, ov), gatherBox(ref, rs, z, ov), rtol, floor) {
			var parts []string
			for d := range rs {
				switch {
				case cs[d] > rs[d]:
					extra := extraValues(cand, cs, d, rs[d])
					what := "not in the reference"
					if allZero(extra) {
						what = "all zeros: padding leaked into the tensor"
					}
					parts = append(parts, fmt.Sprintf("%s extra at d%d=%d:%d (%s)", Plural(cs[d]-rs[d], "row"), d, rs[d], cs[d], what))
				case cs[d] < rs[d]:
					parts = append(parts, fmt.Sprintf("truncated: d%d=%d:%d of the reference is missing", d, cs[d], rs[d]))
				}
			}
			x.body = fmt.Sprintf("shape %v where the reference is %v; the overlap %s matches the reference; %s", cs, rs, regionString(z, ov), strings.Join(parts, "; "))
			return x
		}
	}
	if len(ref) == len(cand) && closeValues(cand, ref, rtol, floor) {
		x.body = fmt.Sprintf("shape %v where the reference is %v, with the same values in the same order: a reshape", cs, rs)
		return x
	}
	if len(rs) >= 2 && len(rs) == len(cs) && rs[len(rs)-1] == cs[len(cs)-2] && rs[len(rs)-2] == cs[len(cs)-1] &&
		closeValues(cand, transposeLast(ref, rs), rtol, floor) {
		x.Mechanism = MechTransposed
		x.body = fmt.Sprintf("shape %v where the reference is %v: the reference transposed", cs, rs)
		return x
	}
	x.Mechanism = MechGarbage
	x.body = fmt.Sprintf("shape %v where the reference is %v, and neither the overlap, a reshape nor a transpose matches", cs, rs)
	return x
}

// extraValues are the elements of a tensor of the given shape at index ≥ from on dim d.
func extraValues(v []float64, shape []int, d, from int) []float64 {
	lo, size := zeros(len(shape)), slices.Clone(shape)
	lo[d], size[d] = from, shape[d]-from
	return gatherBox(v, shape, lo, size)
}

func allZero(v []float64) bool {
	for _, x := range v {
		if x != 0 {
			return false
		}
	}
	return true
}
