package verify

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Comparing fingerprints (trace/fingerprint.go). A side stored as fingerprints is rebuilt as the
// fingerprint of its logical tensor (its shards' fingerprints added up, copies checked against
// each other); a side stored in full is fingerprinted here, its sample taken at the other side's
// indices. Then: equal hashes are "identical"; otherwise the sampled elements are judged exactly
// as full tensors' elements are, the normwise deviation is estimated from the sample and bounded
// from below by the norms and the block sketches (a difference of norms or of block sums is a
// lower bound on the norm of the error), and the verdict is close or diverged.

// FingerprintCheck says how a tensor compared on fingerprints was judged (Result.Fingerprint).
type FingerprintCheck struct {
	RefFull, CandFull bool  // the side was stored in full (fingerprinted by the verifier)
	Samples           int   // elements compared (the sides' common sample)
	Numel             int64 // elements of the tensor
	// Estimate is the normwise deviation (Metrics.NormDev) estimated from the sample; Bound is
	// the lower bound on it that the norms and block sketches prove. NormDev is their max.
	Estimate, Bound float64
	// Blocks lists the sketch blocks whose sums or norms differ beyond the normwise tolerance,
	// or that hold a sampled element outside tolerance: where the error is.
	Blocks []SketchBlock
	// Ranks are candidate ranks whose pieces hold a sampled element outside tolerance.
	Ranks []int

	ref, cand *layout
}

// SketchBlock is a run of rows of one dim that a sketch flags.
type SketchBlock struct {
	Dim, Lo, Hi int
}

func (b SketchBlock) String() string { return fmt.Sprintf("dim %d rows [%d,%d)", b.Dim, b.Lo, b.Hi) }

// FingerprintCaveat is what a comparison on fingerprints can miss; every report that compared a
// fingerprint prints it.
const FingerprintCaveat = "a fingerprint compares an equality hash, norms, a sample of elements and per-block sums; " +
	"it can miss an error confined to a few unsampled elements too small to move a norm or a block sum, " +
	"and it cannot show the block diagnosis: re-run with the tensors dumped in full for that"

// hasFingerprint reports whether either side of p is stored as fingerprints.
func (p pair) hasFingerprint() bool {
	return (p.ref != nil && p.ref.fp) || (p.cand != nil && p.cand.fp)
}

// compareFingerprint finishes compareOne for a pair with a fingerprinted side; res has the
// names, kinds, shapes, dtypes and tolerance filled in.
func (c *comparer) compareFingerprint(p pair, res *Result, w *worker, normTol float64) (*Result, error) {
	fc := &FingerprintCheck{RefFull: p.ref != nil && !p.ref.fp, CandFull: p.cand != nil && !p.cand.fp, ref: p.ref, cand: p.cand}
	res.Fingerprint, res.ref, res.cand = fc, nil, nil
	if unpaired(p, res) {
		return res, nil
	}
	var rf, cf *trace.Fingerprint
	var err error
	if p.ref.fp {
		if rf, res.RefReplicas, err = c.logicalFingerprint(p.ref, res.RTol); err != nil {
			return res, err
		}
	}
	if p.cand.fp {
		if cf, res.CandReplicas, err = c.logicalFingerprint(p.cand, res.RTol); err != nil {
			return res, err
		}
	}
	if rf == nil {
		if rf, res.RefReplicas, err = c.fullFingerprint(p.ref, cf, res.RTol, w, &w.refBuf); err != nil {
			return res, err
		}
	}
	if cf == nil {
		if cf, res.CandReplicas, err = c.fullFingerprint(p.cand, rf, res.RTol, w, &w.candBuf); err != nil {
			return res, err
		}
	}
	if !c.opt.SkipHashes {
		res.RefMD5, res.CandMD5 = rf.MD5, cf.MD5
	}
	fc.Numel = int64(tensor.Numel(res.RefShape))
	res.Metrics = fc.measure(rf, cf, res.RefShape, res.RTol, normTol, c.kindFloors[res.Kind])
	res.NormTol = max(normTol, res.RTol/math.Sqrt(float64(max(res.Numel, 1))))
	identical := res.RefDType == res.CandDType && rf.Hash == cf.Hash
	switch {
	case len(res.CandReplicas) > 0 || len(res.RefReplicas) > 0:
		res.Verdict = ReplicaMismatch
		if len(res.CandReplicas) == 0 {
			res.Note = joinNote(res.Note, "the reference's own copies disagree")
		}
	case identical:
		res.Verdict = Identical
		res.Metrics = Metrics{Numel: res.Numel, Worst: -1, RefRMS: res.RefRMS, Floor: res.Floor}
		fc.Estimate, fc.Bound, fc.Blocks = 0, 0, nil
	case res.NonFinite > 0:
		res.Verdict = NonFinite
	case res.judge(res.NormTol):
		res.Verdict = Close
	default:
		res.Verdict = Diverged
	}
	if res.Verdict == Diverged || res.Verdict == NonFinite {
		fc.Ranks = c.samplesRanks(p.cand, res)
		res.Ranks = fc.Ranks
	}
	return res, nil
}

// logicalFingerprint combines the pieces of a fingerprinted logical tensor: one copy per cell
// (shards add up), the other copies checked against it.
func (c *comparer) logicalFingerprint(l *layout, rtol float64) (*trace.Fingerprint, []Disagreement, error) {
	if l.partial { // the reader refuses these; a layout built otherwise must not get here
		return nil, nil, l.errAll("fingerprint", "a partial-sum tensor cannot be compared on fingerprints")
	}
	var parts []*trace.Fingerprint
	var reps []Disagreement
	for _, cl := range l.cells {
		fps := make([]*trace.Fingerprint, len(cl.copies))
		for i, q := range cl.copies {
			fp, err := l.pieceFingerprint(q, cl)
			if err != nil {
				return nil, nil, err
			}
			fps[i] = fp
		}
		if d := l.fingerprintCopies(cl, fps, rtol); d != nil {
			reps = append(reps, *d)
		}
		parts = append(parts, fps[0])
	}
	fp := trace.CombineFingerprints(parts)
	if len(l.cells) == 1 && len(l.place) > 0 {
		fp.MD5 = "" // one cell of a placed tensor: its MD5, if any, is of a padded piece
	}
	return fp, reps, nil
}

// pieceFingerprint reads one piece's fingerprint and checks it against the layout: its dtype
// and sketch blocks, and that every sampled index lies in the piece's region.
func (l *layout) pieceFingerprint(q *piece, cl *cell) (*trace.Fingerprint, error) {
	fp, err := q.file.Fingerprint(q.entry)
	if err != nil {
		return nil, err
	}
	for d, b := range fp.Blocks {
		if b != min(l.shape[d], trace.SketchBlocks) {
			return nil, l.errAt(q, "fingerprint.blocks", "dim %d has %d sketch blocks, but a dim of %d rows has %d", d, b, l.shape[d], min(l.shape[d], trace.SketchBlocks))
		}
	}
	strides := tensor.Strides(l.shape)
	for _, g := range fp.Index {
		for d, s := range strides {
			r := int(g) / s % l.shape[d]
			if !slices.ContainsFunc(cl.spans[d], func(sp trace.Span) bool { return r >= sp.Lo && r < sp.Hi }) {
				return nil, l.errAt(q, "fingerprint.samples", "sampled index %d (row %d of dim %d) is outside the piece's rows %s", g, r, d, runsString(cl.spans[d]))
			}
		}
	}
	fp.Numel = int64(tensor.Numel(cl.box()))
	return fp, nil
}

// fingerprintCopies groups a cell's copies by agreement (equal hashes, or samples within rtol)
// and returns the disagreement, if any.
func (l *layout) fingerprintCopies(cl *cell, fps []*trace.Fingerprint, rtol float64) *Disagreement {
	if len(fps) < 2 {
		return nil
	}
	leaders := []*trace.Fingerprint{fps[0]}
	groups := [][]int{{cl.copies[0].rank}}
	var maxAbs float64
	for i, fp := range fps[1:] {
		g := -1
		for j, lead := range leaders {
			if lead.Hash == fp.Hash || sampleClose(lead, fp, rtol) {
				g = j
				break
			}
		}
		maxAbs = max(maxAbs, sampleMaxAbs(fps[0], fp))
		switch {
		case g >= 0:
		case len(leaders) < maxLeaders:
			leaders = append(leaders, fp)
			groups = append(groups, nil)
			g = len(groups) - 1
		default:
			g = len(groups) - 1
		}
		groups[g] = append(groups[g], cl.copies[i+1].rank)
	}
	if len(groups) == 1 {
		return nil
	}
	return &Disagreement{Cell: l.label(cl.key), Groups: groups, MaxAbs: maxAbs}
}

// common calls fn for every index both samples hold, with the two values.
func common(a, b *trace.Fingerprint, fn func(g int64, av, bv float64)) {
	i, j := 0, 0
	for i < len(a.Index) && j < len(b.Index) {
		switch {
		case a.Index[i] < b.Index[j]:
			i++
		case a.Index[i] > b.Index[j]:
			j++
		default:
			fn(a.Index[i], a.Value[i], b.Value[j])
			i++
			j++
		}
	}
}

// sampleClose reports whether two copies' samples, their stats and sketches agree at rtol (the
// floor is the first copy's rms).
func sampleClose(a, b *trace.Fingerprint, rtol float64) bool {
	if a.NonFinite != b.NonFinite {
		return false
	}
	floor := rmsOf(a)
	ok := true
	common(a, b, func(_ int64, av, bv float64) {
		ok = ok && closeValues([]float64{bv}, []float64{av}, rtol, floor)
	})
	return ok
}

func sampleMaxAbs(a, b *trace.Fingerprint) float64 {
	var m float64
	common(a, b, func(_ int64, av, bv float64) {
		d := math.Abs(av - bv)
		if math.IsNaN(d) {
			d = math.Inf(1)
		}
		m = max(m, d)
	})
	return m
}

func rmsOf(fp *trace.Fingerprint) float64 {
	if n := fp.Numel - fp.NonFinite; n > 0 {
		return math.Sqrt(fp.SumSq / float64(n))
	}
	return 0
}

// fullFingerprint fingerprints a side stored in full: its assembled bytes, sampled at the
// other side's indices (so the whole sample is compared).
func (c *comparer) fullFingerprint(l *layout, other *trace.Fingerprint, rtol float64, w *worker, buf *[]byte) (*trace.Fingerprint, []Disagreement, error) {
	raw, reps, err := w.a.assemble(l, *buf, rtol)
	if err != nil {
		return nil, nil, err
	}
	*buf = raw
	spans := make([][]trace.Span, len(l.shape))
	for d, n := range l.shape {
		spans[d] = []trace.Span{{Lo: 0, Hi: n}}
	}
	fp := trace.ComputeFingerprint(l.name, l.dtype, raw, l.shape, l.shape, spans, 0)
	fp.Index = slices.Clone(other.Index)
	fp.Value = make([]float64, len(fp.Index))
	es := l.dtype.Size()
	for i, g := range fp.Index {
		fp.Value[i] = l.dtype.Value(raw[int(g)*es:])
	}
	if !c.opt.SkipHashes {
		fp.MD5 = md5Hex(raw)
	}
	return fp, reps, nil
}

// unitF64 is float64's unit roundoff: the sums in a fingerprint are float64 whatever the dtype.
const unitF64 = 0x1p-53

// gamma is Higham's γ_n = n·u/(1−n·u), the worst-case relative error of a float64 sum of n
// terms in any order (Accuracy and Stability of Numerical Algorithms, 2nd ed., §4.2); +Inf when
// n·u ≥ 1/2, where no bound is worth having.
func gamma(n int64) float64 {
	nu := float64(n) * unitF64
	if nu >= 0.5 {
		return math.Inf(1)
	}
	return nu / (1 - nu)
}

// measure fills the metrics a fingerprint comparison supports: the sample's element-wise
// metrics (as compareRaw computes them, on the sampled elements), the normwise deviation as the
// larger of the sample's estimate and the norms' and sketches' lower bound, and the blocks where
// the error is.
func (fc *FingerprintCheck) measure(rf, cf *trace.Fingerprint, shape []int, rtol, normTol, kindFloor float64) Metrics {
	n := tensor.Numel(shape)
	m := Metrics{Numel: n, Worst: -1, RefRMS: rmsOf(rf)}
	m.Floor = max(m.RefRMS, kindFloor)
	if rf.NonFinite != cf.NonFinite {
		m.NonFinite = int(max(rf.NonFinite, cf.NonFinite) - min(rf.NonFinite, cf.NonFinite))
	}
	var strides []int
	var sumSqDiff float64
	flagged := map[SketchBlock]bool{}
	common(rf, cf, func(g int64, rv, cv float64) {
		fc.Samples++
		d := cv - rv
		if d == 0 {
			return
		}
		idx := int(g)
		if math.IsNaN(d) || math.IsInf(d, 0) {
			if nonFiniteAgree(rv, cv) {
				return
			}
			if !isFinite(rv) || !isFinite(cv) {
				m.NonFinite = max(m.NonFinite, 1)
			}
			m.outside(idx, math.Inf(1), shape, &strides)
			fc.flagRows(flagged, idx, shape)
			return
		}
		ad, ar := math.Abs(d), math.Abs(rv)
		m.MaxAbs = max(m.MaxAbs, ad)
		if rv != 0 {
			m.MaxRel = max(m.MaxRel, ad/ar)
		}
		sumSqDiff += float64(ad * ad)
		tol := rtol * (ar + m.Floor)
		if ad > tol {
			m.outside(idx, ad/tol, shape, &strides)
			fc.flagRows(flagged, idx, shape)
		} else if ad > m.TolUnits*tol {
			m.TolUnits, m.Worst = ad/tol, idx
		}
	})
	finite := float64(int64(n) - rf.NonFinite)
	weight := math.Sqrt(rf.SumSq + 2*m.Floor*rf.SumAbs + finite*m.Floor*m.Floor)
	if fc.Samples > 0 && sumSqDiff > 0 {
		est := math.Sqrt(sumSqDiff * finite / float64(fc.Samples))
		fc.Estimate = ratio(est, weight)
		if rf.SumSq > 0 {
			m.RMSRel = est / math.Sqrt(rf.SumSq)
		} else {
			m.RMSRel = math.Inf(1)
		}
	}
	bound := blockBound(rf.SumSq, cf.SumSq, 0, 0, int64(n), false)
	for d, g := range shape {
		if d >= len(rf.Blocks) || d >= len(cf.Blocks) || rf.Blocks[d] != cf.Blocks[d] {
			continue
		}
		b := rf.Blocks[d]
		var sq float64
		for k := 0; k < b; k++ {
			lo, hi := blockRows(k, g, b)
			nb := int64(hi-lo) * int64(n/max(g, 1))
			rs, cs := rf.Sketch[d][k], cf.Sketch[d][k]
			rss, css := rf.Sketch[d][b+k], cf.Sketch[d][b+k]
			lb := blockBound(rss, css, rs, cs, nb, true)
			sq += lb * lb
			wb := math.Sqrt(rss + float64(nb)*m.Floor*m.Floor)
			if lb > normTol*wb {
				flagged[SketchBlock{Dim: d, Lo: lo, Hi: hi}] = true
			}
		}
		bound = max(bound, math.Sqrt(sq))
	}
	fc.Bound = ratio(bound, weight)
	m.NormDev = max(fc.Estimate, fc.Bound)
	var blocks []SketchBlock
	for b := range flagged {
		blocks = append(blocks, b)
	}
	sort.Slice(blocks, func(i, j int) bool {
		a, b := blocks[i], blocks[j]
		if a.Dim != b.Dim {
			return a.Dim < b.Dim
		}
		return a.Lo < b.Lo
	})
	for _, b := range blocks { // adjacent blocks of a dim make one run
		if k := len(fc.Blocks) - 1; k >= 0 && fc.Blocks[k].Dim == b.Dim && fc.Blocks[k].Hi == b.Lo {
			fc.Blocks[k].Hi = b.Hi
			continue
		}
		fc.Blocks = append(fc.Blocks, b)
	}
	return m
}

func ratio(a, b float64) float64 {
	switch {
	case b > 0:
		return a / b
	case a > 0:
		return math.Inf(1)
	}
	return 0
}

// blockRows is the row range of sketch block k of a dim of n rows cut into b blocks (the rows r
// with ⌊r·b/n⌋ = k).
func blockRows(k, n, b int) (lo, hi int) {
	return (k*n + b - 1) / b, ((k+1)*n + b - 1) / b
}

// blockBound is a lower bound on ‖cand − ref‖₂ over a block of nb elements from its sums of
// squares (|‖c‖ − ‖r‖| ≤ ‖c − r‖) and, when withSums, its sums (|Σc − Σr| ≤ √nb·‖c − r‖),
// each reduced by the worst rounding of a float64 sum of nb terms in any order.
func blockBound(rss, css, rs, cs float64, nb int64, withSums bool) float64 {
	if nb <= 0 || !isFinite(rss) || !isFinite(css) {
		return 0
	}
	gm := 2 * gamma(nb) // both operands of each difference are rounded
	var lb float64
	if den := math.Sqrt(rss) + math.Sqrt(css); den > 0 {
		lb = max(0, math.Abs(css-rss)-gm*(rss+css)) / den
	}
	if withSums && isFinite(rs) && isFinite(cs) {
		sn := math.Sqrt(float64(nb))
		lb = max(lb, max(0, math.Abs(cs-rs)-gm*sn*(math.Sqrt(rss)+math.Sqrt(css)))/sn)
	}
	if math.IsNaN(lb) {
		return 0
	}
	return lb
}

// flagRows marks the sketch block of every dim holding element idx.
func (fc *FingerprintCheck) flagRows(flagged map[SketchBlock]bool, idx int, shape []int) {
	strides := tensor.Strides(shape)
	for d, s := range strides {
		r := idx / s % shape[d]
		b := min(shape[d], trace.SketchBlocks)
		k := r * b / shape[d]
		lo, hi := blockRows(k, shape[d], b)
		flagged[SketchBlock{Dim: d, Lo: lo, Hi: hi}] = true
	}
}

// samplesRanks lists the candidate ranks whose pieces hold a sampled element outside tolerance
// (a bounding box of them when the candidate is in full).
func (c *comparer) samplesRanks(l *layout, res *Result) []int {
	if res.Lo == nil {
		return nil
	}
	var ranks []int
	for _, cl := range l.cells {
		inside := true
		for d := range res.Lo {
			if !slices.ContainsFunc(cl.spans[d], func(sp trace.Span) bool { return sp.Lo < res.Hi[d] && res.Lo[d] < sp.Hi }) {
				inside = false
			}
		}
		if inside {
			for _, q := range cl.copies {
				if !slices.Contains(ranks, q.rank) {
					ranks = append(ranks, q.rank)
				}
			}
		}
	}
	slices.Sort(ranks)
	return ranks
}

// Fingerprinted is the number of tensors compared on fingerprints.
func (r *Report) Fingerprinted() int {
	n := 0
	for _, res := range r.Results {
		if res.Fingerprint != nil {
			n++
		}
	}
	return n
}

// Redump is the targeted re-run the bisect workflow needs after a comparison on fingerprints:
// the tensors at the first divergence that were compared on a fingerprint, to be dumped in
// full by both producers, and the commands that do it.
type Redump struct {
	Names    []string
	Commands []string // one per side whose producer spcheck can re-run, then the comparison
	Notes    []string // sides spcheck cannot re-run: what to dump by hand
}

// Redump returns the targeted re-run that gives the first divergence its full diagnosis, or nil
// when it was not compared on fingerprints.
func (r *Report) Redump() *Redump {
	var names []string
	for _, res := range r.First() {
		if res.Fingerprint != nil && !slices.Contains(names, res.Name) {
			names = append(names, res.Name)
		}
	}
	if len(names) == 0 {
		return nil
	}
	rd := &Redump{Names: names}
	var dump []string
	for _, n := range names {
		dump = append(dump, "--dump '"+n+"'")
	}
	dirs := [2]string{}
	for i, side := range []TraceInfo{r.Ref, r.Cand} {
		dirs[i] = strings.TrimRight(side.Dir, "/") + ".full"
		cmd := ""
		switch side.Producer {
		case "oracle":
			cmd = "spcheck oracle"
		case "simulate":
			cmd = "spcheck run"
		}
		if cmd == "" || side.Plan == "" {
			rd.Notes = append(rd.Notes, fmt.Sprintf("%s (%s): re-run it with %s dumped in full and the rest fingerprinted (spcheck_dump: Dumper(..., fingerprint=True, dump=[...]))",
				side.Dir, orDash(side.Producer), strings.Join(names, ", ")))
			dirs[i] = side.Dir + " (re-dumped)"
			continue
		}
		rd.Commands = append(rd.Commands, fmt.Sprintf("%s --plan '%s' --fingerprint %s --out %s", cmd, side.Plan, strings.Join(dump, " "), dirs[i]))
	}
	rd.Commands = append(rd.Commands, fmt.Sprintf("spcheck compare %s %s", dirs[0], dirs[1]))
	return rd
}

// equalityHashes is Diff's pair of hashes when a side is fingerprinted: both sides' equality
// hashes ("fp:" and 32 hex digits; a side stored in full is fingerprinted here), equal exactly
// when the canonical bytes are. "" for a side that lacks the tensor.
func (c *comparer) equalityHashes(p pair, w *worker) (kind trace.Kind, shape []int, a, b string, err error) {
	var hs [2]string
	for side, l := range []*layout{p.ref, p.cand} {
		if l == nil {
			continue
		}
		kind, shape = l.kind, l.shape
		var fp *trace.Fingerprint
		if l.fp {
			fp, _, err = c.logicalFingerprint(l, DefaultRTol(l.dtype))
		} else {
			fp, _, err = c.fullFingerprint(l, &trace.Fingerprint{}, DefaultRTol(l.dtype), w, &w.refBuf)
		}
		if err != nil {
			return "", nil, "", "", err
		}
		hs[side] = "fp:" + fp.HashString()
	}
	return kind, shape, hs[0], hs[1], nil
}
