package verify

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// BlockClass is what a candidate block turned out to hold.
type BlockClass string

const (
	Correct     BlockClass = "correct"      // its own reference block, within tolerance
	Misplaced   BlockClass = "misplaced"    // another position's reference block
	Duplicated  BlockClass = "duplicated"   // another position's reference block that is also held elsewhere
	Scaled      BlockClass = "scaled"       // c × its own reference block
	SlightlyOff BlockClass = "slightly off" // its own reference block within PrecisionUnits tolerances, or × a factor within PrecisionFactor of 1: precision, not lost
	Garbage     BlockClass = "garbage"      // none of the above
)

// Block levels of a diagnosis.
const (
	LevelShard = "shard" // one block per piece a rank holds
	LevelChunk = "chunk" // each piece cut into Parts equal flat chunks: the unit of partial P2P
)

// Heatmap scale: log10 of the error in units of tolerance, clamped so that exact agreement and
// ±Inf/NaN still plot. 0 is the tolerance itself.
const (
	HeatMin  = -3.0 // ≤ 1/1000 of the tolerance, exact agreement included
	HeatMax  = 8.0  // ≥ 10⁸ tolerances, non-finite disagreements included
	HeatCols = 64   // most position buckets per row
)

// abbrevMax is the most values a block shows in full; longer blocks show the first
// abbrevHead and the last abbrevTail.
const (
	abbrevMax  = 8
	abbrevHead = 5
	abbrevTail = 2
)

// Values are a block's values, abbreviated.
type Values struct {
	Head   []float64
	Tail   []float64 // the last values, when some are elided
	Elided int       // how many values between Head and Tail are not shown
}

func abbreviate(v []float64) Values {
	if len(v) <= abbrevMax {
		return Values{Head: slices.Clone(v)}
	}
	return Values{Head: slices.Clone(v[:abbrevHead]), Tail: slices.Clone(v[len(v)-abbrevTail:]), Elided: len(v) - abbrevHead - abbrevTail}
}

// BlockID names a reference block: block Block of the piece that row Row (rank Rank, at Coord)
// should hold.
type BlockID struct {
	Row    int
	Rank   int
	Coord  Coord
	Block  int
	Values Values
}

// Block is one candidate block and what it holds.
type Block struct {
	Lo, Hi    int // flat element range within the row's piece
	Class     BlockClass
	Source    *BlockID // misplaced, duplicated: the reference block it holds
	Scale     float64  // scaled: cand = Scale × reference
	ScaleName string   // scaled: the plan quantity Scale equals, e.g. "tp", "1/microbatches"; "" if none
	Actual    Values
	Expected  Values
}

// Row is one piece of the candidate (one rank's shard or copy) against the reference.
type Row struct {
	Rank     int    // -1 for the assembled sum of a partial tensor
	Coord    Coord  // the piece's mesh coordinates on axes of size > 1, e.g. pp=1,tp=0
	Region   string // the global region it holds, e.g. "[2:4, 0:2]"
	Numel    int
	Outside  int     // elements outside tolerance
	MaxUnits float64 // worst error in units of tolerance
	Blocks   []Block
	Heat     []float64 // per position bucket: log10 of the worst error in tolerances, in [HeatMin, HeatMax]
}

// OK reports whether the row's piece is within tolerance everywhere.
func (r *Row) OK() bool { return r.Outside == 0 }

// Diagnosis explains a failing tensor block by block.
type Diagnosis struct {
	Level    string // LevelShard or LevelChunk
	Parts    int    // chunks per piece at LevelChunk
	Rows     []Row
	Lost     []BlockID // reference blocks no candidate block holds (only when there are several)
	Findings []string  // one sentence each
}

// diagRow is a row under construction: its values and their reference.
type diagRow struct {
	Row
	actual, expected []float64
	region           string
	lo, box          []int // the piece's global origin and extent; nil when segmented
}

// diagnose explains how res's candidate differs from its reference, given both assembled (the
// same global shape): the block diagnosis and the divergence's signature.
func (c *comparer) diagnose(res *Result, refRaw, candRaw []byte) (*Diagnosis, *Signature, error) {
	rl, cl, rtol, floor := res.ref, res.cand, res.RTol, res.Floor
	refAll := tensor.Decode(rl.dtype, refRaw, make([]float64, 0, tensor.Numel(rl.shape)))
	rows, err := c.diagRows(cl, refAll, candRaw)
	if err != nil {
		return nil, nil, err
	}
	for i := range rows {
		rows[i].measure(rtol, floor)
	}
	names := scaleNames(cl, c.cand)
	best := matchBlocks(rows, 1, rtol, floor, names)
	if k := chunkParts(cl); k > 1 && best.garbage > 0 && divisible(rows, k) {
		if ch := matchBlocks(rows, k, rtol, floor, names); ch.garbage < best.garbage {
			best = ch
		}
	}
	d := &Diagnosis{Level: LevelShard, Parts: best.parts, Lost: best.lost}
	if best.parts > 1 {
		d.Level = LevelChunk
	}
	for i := range rows {
		rows[i].Blocks = best.blocks[i]
		d.Rows = append(d.Rows, rows[i].Row)
	}
	d.Findings = findings(rows, d, best)
	candAll := tensor.Decode(cl.dtype, candRaw, make([]float64, 0, tensor.Numel(cl.shape)))
	e := &explainer{res: res, rows: rows, d: d, ref: refAll, cand: candAll, shape: res.RefShape, rtol: rtol, floor: floor, cl: cl}
	res.Explanation = e.explain()
	return d, signatureOf(res.Verdict, res.Kind, res.RefShape, d, rows, refAll, candAll, rtol, floor), nil
}

// diagRows gives every candidate piece with its reference values; a tensor with a partial axis
// has one row, its assembled sum.
func (c *comparer) diagRows(cl *layout, refAll []float64, candRaw []byte) ([]diagRow, error) {
	if cl.partial {
		r := diagRow{Row: Row{Rank: -1, Region: regionString(zeros(len(cl.shape)), cl.shape)}, lo: zeros(len(cl.shape)), box: cl.shape}
		r.actual = tensor.Decode(cl.dtype, candRaw, nil)
		r.expected = refAll
		return []diagRow{r}, nil
	}
	var rows []diagRow
	var buf, cbuf []byte
	es := cl.dtype.Size()
	for _, cel := range cl.cells {
		box := cel.box()
		expected := make([]float64, tensor.Numel(box))
		cl.cellRuns(cel, func(g, loc, n int) { copy(expected[loc:loc+n], refAll[g:g+n]) })
		for _, p := range cel.copies {
			var err error
			if buf, err = readPiece(p, buf); err != nil {
				return nil, err
			}
			cbuf = compactBox(buf, p.entry.Shape, box, es, cbuf)
			r := diagRow{Row: Row{Rank: p.rank, Coord: meshCoord(cl, p), Region: cel.region()}}
			if !cel.segmented {
				r.lo, r.box = cel.lo, box
			}
			r.actual = tensor.Decode(cl.dtype, cbuf, nil)
			r.expected = expected
			rows = append(rows, r)
		}
	}
	slices.SortStableFunc(rows, func(a, b diagRow) int { return a.Rank - b.Rank })
	return rows, nil
}

// meshCoord is a piece's coordinates on the mesh axes of size > 1.
func meshCoord(l *layout, p *piece) Coord {
	var c Coord
	for i, x := range p.coord {
		if x >= 0 && l.mesh.Shape[i] > 1 {
			c = append(c, AxisIndex{l.mesh.Axes[i], x})
		}
	}
	return c
}

func regionString(lo, hi []int) string {
	parts := make([]string, len(lo))
	for i := range lo {
		parts[i] = fmt.Sprintf("%d:%d", lo[i], hi[i])
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// measure fills the row's error counts and heatmap.
func (r *diagRow) measure(rtol, floor float64) {
	n := len(r.actual)
	r.Numel = n
	cols := min(n, HeatCols)
	r.Heat = make([]float64, cols)
	for b := range r.Heat {
		r.Heat[b] = HeatMin
	}
	for b := range r.Heat {
		for i := b * n / cols; i < (b+1)*n/cols; i++ { // bucket b: elements [b·n/cols, (b+1)·n/cols)
			u := units(r.actual[i], r.expected[i], rtol, floor)
			if u > 1 {
				r.Outside++
			}
			r.MaxUnits = max(r.MaxUnits, u)
			r.Heat[b] = max(r.Heat[b], heat(u))
		}
	}
}

// units is |a − e| in units of the tolerance; +Inf for a non-finite disagreement.
func units(a, e, rtol, floor float64) float64 {
	if a == e || nonFiniteAgree(a, e) {
		return 0
	}
	d := math.Abs(a - e)
	if math.IsNaN(d) || math.IsInf(d, 0) {
		return math.Inf(1)
	}
	return d / (rtol * (math.Abs(e) + floor))
}

func heat(u float64) float64 {
	if u <= 0 {
		return HeatMin
	}
	return math.Max(HeatMin, math.Min(HeatMax, math.Log10(u)))
}

// chunkParts is how many flat chunks partial P2P cuts a piece into: the tp axis's size, or the
// innermost sharding axis's when the mesh has no tp axis.
func chunkParts(l *layout) int {
	if i := slices.Index(l.mesh.Axes, "tp"); i >= 0 && l.mesh.Shape[i] > 1 {
		return l.mesh.Shape[i]
	}
	for j := len(l.place) - 1; j >= 0; j-- {
		if ap := l.place[j]; ap.Kind == trace.Shard {
			return l.mesh.Size(ap.Axis)
		}
	}
	return 0
}

func divisible(rows []diagRow, k int) bool {
	for _, r := range rows {
		if len(r.actual) < k || len(r.actual)%k != 0 {
			return false
		}
	}
	return true
}

// matching is the outcome of matching every candidate block at one granularity.
type matching struct {
	parts   int
	blocks  [][]Block
	lost    []BlockID
	garbage int // elements in garbage blocks
}

// refBlock is one distinct reference block.
type refBlock struct {
	id   BlockID
	vals []float64
	norm float64
	hits int // candidate blocks holding it (correct or misplaced)
	sc   int // candidate blocks holding a multiple of it
}

// matchBlocks cuts every row into k flat chunks and classifies each candidate chunk against
// every reference chunk.
func matchBlocks(rows []diagRow, k int, rtol, floor float64, names map[float64]string) matching {
	m := matching{parts: k, blocks: make([][]Block, len(rows))}
	var refs []*refBlock
	own := make([][]int, len(rows)) // own[row][chunk] = index into refs
	byRegion := map[string]int{}    // first row with a region
	exact := map[string][]int{}     // bit pattern → refs
	for i, r := range rows {
		first, seen := byRegion[r.Region]
		if !seen {
			byRegion[r.Region] = i
			first = i
		}
		own[i] = make([]int, k)
		for j := 0; j < k; j++ {
			if seen {
				own[i][j] = own[first][j]
				continue
			}
			lo, hi := chunk(len(r.expected), k, j)
			v := r.expected[lo:hi]
			rb := &refBlock{id: BlockID{Row: i, Rank: r.Rank, Coord: r.Coord, Block: j, Values: abbreviate(v)}, vals: v, norm: norm2(v)}
			own[i][j] = len(refs)
			exact[bitsKey(v)] = append(exact[bitsKey(v)], len(refs))
			refs = append(refs, rb)
		}
	}
	for i, r := range rows {
		for j := 0; j < k; j++ {
			lo, hi := chunk(len(r.actual), k, j)
			a := r.actual[lo:hi]
			o := refs[own[i][j]]
			b := Block{Lo: lo, Hi: hi, Actual: abbreviate(a), Expected: abbreviate(o.vals)}
			if closeValues(a, o.vals, rtol, floor) {
				b.Class = Correct
				o.hits++
			} else if src := findHolder(a, refs, exact, own[i][j], rtol, floor); src >= 0 {
				b.Class = Misplaced
				id := refs[src].id
				b.Source = &id
				refs[src].hits++
			} else if c, ok := scaleOf(a, o.vals, rtol, floor); ok {
				b.Class, b.Scale, b.ScaleName = Scaled, c, names[c]
				o.sc++
			} else if slightlyOff(a, o.vals, rtol, floor) {
				b.Class = SlightlyOff
				o.hits++
			} else {
				b.Class = Garbage
				m.garbage += hi - lo
			}
			m.blocks[i] = append(m.blocks[i], b)
		}
	}
	for i := range m.blocks {
		for j := range m.blocks[i] {
			b := &m.blocks[i][j]
			if b.Class == Misplaced && refs[indexOf(refs, b.Source)].hits > 1 {
				b.Class = Duplicated
			}
		}
	}
	if len(refs) > 1 {
		for _, rb := range refs {
			if rb.hits == 0 && rb.sc == 0 {
				m.lost = append(m.lost, rb.id)
			}
		}
	}
	return m
}

func indexOf(refs []*refBlock, id *BlockID) int {
	for i, rb := range refs {
		if rb.id.Row == id.Row && rb.id.Block == id.Block {
			return i
		}
	}
	return -1
}

// chunk is the flat range of chunk j of k over n elements (n divisible by k, or k == 1).
func chunk(n, k, j int) (lo, hi int) { return j * n / k, (j + 1) * n / k }

func norm2(v []float64) float64 {
	var s float64
	for _, x := range v {
		if isFinite(x) {
			s += x * x
		}
	}
	return math.Sqrt(s)
}

func bitsKey(v []float64) string {
	b := make([]byte, 0, 8*len(v))
	for _, x := range v {
		u := math.Float64bits(x)
		b = append(b, byte(u), byte(u>>8), byte(u>>16), byte(u>>24), byte(u>>32), byte(u>>40), byte(u>>48), byte(u>>56))
	}
	return string(b)
}

// findHolder finds a reference block other than self that a holds: bit-exact first, then within
// tolerance, pruning by norm (|‖a‖ − ‖b‖| ≤ ‖a − b‖ ≤ rtol·(‖b‖ + floor·√n)). -1 if none.
func findHolder(a []float64, refs []*refBlock, exact map[string][]int, self int, rtol, floor float64) int {
	for _, j := range exact[bitsKey(a)] {
		if j != self {
			return j
		}
	}
	na := norm2(a)
	for j, rb := range refs {
		if j == self || len(rb.vals) != len(a) {
			continue
		}
		if math.Abs(na-rb.norm) > rtol*(rb.norm+floor*math.Sqrt(float64(len(a)))) {
			continue
		}
		if closeValues(a, rb.vals, rtol, floor) {
			return j
		}
	}
	return -1
}

// maxScaleDenom bounds the factors scaleOf recognises: ±n and ±1/n for n ≤ maxScaleDenom.
const maxScaleDenom = 1024

// scaleOf reports whether a = c·e for a simple factor c (±n or ±1/n, c ≠ 1), within tolerance.
func scaleOf(a, e []float64, rtol, floor float64) (float64, bool) {
	var ae, ee float64
	for i, x := range e {
		if !isFinite(x) || !isFinite(a[i]) {
			return 0, false
		}
		ae += a[i] * x
		ee += x * x
	}
	if ee == 0 {
		return 0, false
	}
	c, ok := simpleFactor(ae/ee, factorRel(rtol))
	if !ok || c == 1 {
		return 0, false
	}
	scaled := make([]float64, len(e))
	for i, x := range e {
		scaled[i] = c * x
	}
	return c, closeValues(a, scaled, rtol, floor*math.Abs(c))
}

// Factor recognition. A block's least-squares factor is exact up to the noise of the values: in
// float64 within simpleFactorRel of a simple factor; in low precision within about the
// normwise noise, which the per-element rtol bounds. maxFactorRel keeps ±n and ±n+1 apart for
// the small n a plan makes likely (tp, microbatches, D/λ ≤ 10); scaleOf confirms every element.
const (
	simpleFactorRel = 1e-6
	maxFactorRel    = 0.05
)

// factorRel is how far a measured factor may lie from a simple one at per-element tolerance rtol.
func factorRel(rtol float64) float64 { return min(max(simpleFactorRel, rtol), maxFactorRel) }

// simpleFactor rounds c to ±n or ±1/n (n ≤ maxScaleDenom) when it is within rel of one.
func simpleFactor(c, rel float64) (float64, bool) {
	a := math.Abs(c)
	if a == 0 || math.IsNaN(a) || math.IsInf(a, 0) {
		return 0, false
	}
	if n := math.Round(a); n >= 1 && n <= maxScaleDenom && math.Abs(a-n) <= rel*a {
		return math.Copysign(n, c), true
	}
	if n := math.Round(1 / a); n >= 2 && n <= maxScaleDenom && math.Abs(1/a-n) <= rel/a {
		return math.Copysign(1/n, c), true
	}
	return 0, false
}

// planQuantities are the plan keys whose values scale gradients when a reduction, a loss weight
// or an adjoint is wrong: the parallel degrees, the micro-batch count and the MTP depth count.
var planQuantities = []string{"tp", "pp", "dp", "microbatches", "mtp"}

// planInt reads an integer key from a trace's plan string ("tp=2,pp=2,…", spcheck's plan
// syntax; other producers' strings simply lack the keys).
func planInt(planStr, key string) (int, bool) {
	for _, kv := range strings.Split(planStr, ",") {
		if k, v, ok := strings.Cut(strings.TrimSpace(kv), "="); ok && k == key {
			n, err := strconv.Atoi(v)
			return n, err == nil
		}
	}
	return 0, false
}

// scaleNames names the factors a plan makes likely: the size of each mesh axis and the plan's
// planQuantities (with 1/x and -x for each), e.g. 2 → "tp", synonyms merged (the mesh's mb axis
// is the plan's microbatches). A factor that two quantities equal stays unnamed: "×2 (dp|tp)"
// names nothing (the explanation decides between them by which tensors are scaled).
func scaleNames(l *layout, info TraceInfo) map[float64]string {
	qs := meshQuantities(l.mesh, info.Plan)
	names := map[float64]string{}
	ambiguous := map[float64]bool{}
	add := func(v float64, name string) {
		if cur, ok := names[v]; ok && cur != name {
			ambiguous[v] = true
		}
		names[v] = name
	}
	for _, x := range qs {
		add(float64(x.v), x.name)
		add(1/float64(x.v), "1/"+x.name)
		add(-float64(x.v), "-"+x.name)
	}
	for v := range ambiguous {
		delete(names, v)
	}
	return names
}

// findings states what the rows show, one sentence each.
func findings(rows []diagRow, d *Diagnosis, m matching) []string {
	var fs []string
	var right, wrong []int
	for _, r := range rows {
		if r.OK() {
			right = appendRank(right, r.Rank)
		} else {
			wrong = appendRank(wrong, r.Rank)
		}
	}
	if len(rows) > 1 || rows[0].Rank >= 0 {
		fs = append(fs, fmt.Sprintf("right: %s; wrong: %s", rankList(right), rankList(wrong)))
	}
	if len(rows) > 1 && allSame(rows, func(r diagRow) []float64 { return r.actual }) &&
		!allSame(rows, func(r diagRow) []float64 { return r.expected }) {
		fs = append(fs, fmt.Sprintf("all %d pieces hold identical data, though the reference pieces differ", len(rows)))
	}
	counts := map[BlockClass]int{}
	scales := map[string]int{}
	total := 0
	for _, bs := range m.blocks {
		for _, b := range bs {
			counts[b.Class]++
			total++
			if b.Class == Scaled {
				scales[FormatScale(b.Scale, b.ScaleName)]++
			}
		}
	}
	if n := counts[Misplaced] + counts[Duplicated]; n > 0 {
		fs = append(fs, fmt.Sprintf("%d of %s hold another position's reference data (%d duplicated)", n, Plural(total, "block"), counts[Duplicated]))
	}
	if len(m.lost) > 0 {
		fs = append(fs, fmt.Sprintf("%s held by no rank (lost)", Plural(len(m.lost), "reference block")+map[bool]string{true: " is", false: " are"}[len(m.lost) == 1]))
	}
	if len(scales) == 1 && counts[Scaled] == total-counts[Correct] {
		for s := range scales {
			fs = append(fs, fmt.Sprintf("every wrong block is %s its reference", s))
		}
	} else if counts[Scaled] > 0 {
		fs = append(fs, fmt.Sprintf("%s scaled copies of their reference", Plural(counts[Scaled], "block")+map[bool]string{true: " is", false: " are"}[counts[Scaled] == 1]))
	}
	if n := counts[SlightlyOff]; n > 0 {
		fs = append(fs, fmt.Sprintf("%s slightly off (precision), not wrong", Plural(n, "block")+map[bool]string{true: " is", false: " are"}[n == 1]))
	}
	if counts[Garbage] > 0 {
		fs = append(fs, fmt.Sprintf("%s no reference block", Plural(counts[Garbage], "block")+map[bool]string{true: " matches", false: " match"}[counts[Garbage] == 1]))
	}
	return fs
}

// Plural is "1 block" or "3 blocks".
func Plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// FormatScale prints a factor as ×2, ×1/4 or ×-1, with its name if it has one: "×2 (tp)".
func FormatScale(c float64, name string) string {
	// Four significant digits, as people write factors: a measured ×2.0000000000000004 is ×2.
	s := "×" + strconv.FormatFloat(c, 'g', 4, 64)
	if a := math.Abs(c); a < 1 && a > 0 {
		if n := math.Round(1 / a); math.Abs(1/a-n) <= 1e-3*n {
			s = fmt.Sprintf("×%s1/%g", map[bool]string{true: "-", false: ""}[c < 0], n)
		}
	}
	if name != "" {
		s += " (" + name + ")"
	}
	return s
}

func appendRank(rs []int, r int) []int {
	if !slices.Contains(rs, r) {
		rs = append(rs, r)
	}
	return rs
}

func rankList(rs []int) string {
	if len(rs) == 0 {
		return "none"
	}
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = fmt.Sprintf("rank %d", r)
		if r < 0 {
			parts[i] = "the sum"
		}
	}
	return strings.Join(parts, ", ")
}

func allSame(rows []diagRow, f func(diagRow) []float64) bool {
	for _, r := range rows[1:] {
		if !slices.Equal(f(r), f(rows[0])) {
			return false
		}
	}
	return true
}
