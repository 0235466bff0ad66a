package verify

import (
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// axisRole is what one mesh axis means for one logical tensor.
type axisRole uint8

const (
	// roleFree: a stage axis, or an axis the pieces have no coordinate on (a virtual axis such
	// as mb for a tensor that is not per micro-batch): pieces differing only here are copies.
	roleFree axisRole = iota
	// roleReplicate: every coordinate holds a copy, and the copies must agree.
	roleReplicate
	// roleShard: coordinates hold disjoint blocks of a dim.
	roleShard
	// rolePartial: coordinates hold summands.
	rolePartial
)

// piece is one stored part of a logical tensor: an entry of one rank's file.
type piece struct {
	file  *trace.File
	entry *trace.Entry
	rank  int
	coord []int // per mesh axis; -1 where the piece has no coordinate on that axis
}

// cell is one (shard, partial) coordinate of a logical tensor and the copies that hold it.
type cell struct {
	key    []int // coordinates on the shard and partial axes, -1 on the others
	pos    int   // shard position: cells differing only in partial coordinates share it
	lo, hi []int // the global region the cell covers (its bounding box when segmented)
	// spans lists, per dim, the global runs whose concatenation the cell's pieces store along
	// that dim; segmented is set when some dim has several (strided or segmented shards).
	spans     [][]trace.Span
	segmented bool
	copies    []*piece
}

// box is the shape of the cell's real data as its pieces store it (padding excluded).
func (c *cell) box() []int {
	if !c.segmented {
		return boxShape(c.lo, c.hi)
	}
	b := make([]int, len(c.spans))
	for d, runs := range c.spans {
		for _, s := range runs {
			b[d] += s.Len()
		}
	}
	return b
}

// region prints the global region the cell covers: "[0:4, 2:4+6:8]" (runs of a dim joined by +).
func (c *cell) region() string {
	if !c.segmented {
		return regionString(c.lo, c.hi)
	}
	dims := make([]string, len(c.spans))
	for d, runs := range c.spans {
		rs := make([]string, len(runs))
		for j, s := range runs {
			rs[j] = fmt.Sprintf("%d:%d", s.Lo, s.Hi)
		}
		dims[d] = strings.Join(rs, "+")
	}
	return "[" + strings.Join(dims, ", ") + "]"
}

// runsString prints runs of one dim: "[2,4)" or "[2,4)+[6,8)".
func runsString(runs []trace.Span) string {
	rs := make([]string, len(runs))
	for j, s := range runs {
		rs[j] = fmt.Sprintf("[%d,%d)", s.Lo, s.Hi)
	}
	return strings.Join(rs, "+")
}

// cellRuns calls fn for every run of contiguous elements of c: its row-major offset in the
// global tensor, its offset in the cell's compact local data (of shape c.box()), its length.
func (l *layout) cellRuns(c *cell, fn func(global, local, n int)) {
	box := c.box()
	if !c.segmented {
		boxRuns(l.shape, c.lo, box, zeros(len(box)), box, fn)
		return
	}
	nd := len(box)
	idx, glo, llo, sub := zeros(nd), zeros(nd), zeros(nd), zeros(nd)
	for {
		for d, j := range idx {
			s := c.spans[d][j]
			glo[d], sub[d] = s.Lo, s.Len()
			llo[d] = 0
			for _, prev := range c.spans[d][:j] {
				llo[d] += prev.Len()
			}
		}
		boxRuns(l.shape, glo, box, llo, sub, fn)
		d := nd - 1
		for ; d >= 0; d-- {
			if idx[d]++; idx[d] < len(c.spans[d]) {
				break
			}
			idx[d] = 0
		}
		if d < 0 {
			return
		}
	}
}

// layout is one logical tensor as a trace lays it out, checked from metadata alone.
type layout struct {
	name    string
	kind    trace.Kind
	reduce  int // the producer's reduction-length hint (trace.TensorMeta.Reduce), 0 if none
	order   int
	dtype   tensor.DType
	place   trace.Placement
	mesh    trace.Mesh
	dir     string
	shape   []int // global shape
	roles   []axisRole
	pieces  []*piece // by rank, then key
	cells   []*cell  // by key
	partial bool     // some axis is partial
	// op and scale say how the operands of the partial axes combine: a sum times scale (the
	// reciprocal of the avg axes' sizes), or an element-wise max or min (then the only partial
	// axis; trace.ParsePlacement refuses others beside it).
	op     trace.PartialOp
	scale  float64
	stored int64 // bytes stored over all pieces
	keys   keyer
	// shapeFrom is the first piece that gives a global shape (Meta.Shape), if any.
	shapeFrom *piece
	// axesOn lists, per dim, the placement items sharding it (outermost first) and their
	// mesh axes' indices.
	axesOn  [][]trace.AxisPlace
	axisIdx [][]int
	fp      bool // stored as fingerprints (every piece is)
}

// traceLayout is every logical tensor of a trace.
type traceLayout struct {
	tr      *trace.Trace
	tensors []*layout // by order, then name
	byName  map[string]*layout
	stored  int64
}

// layoutOf groups a trace's entries into logical tensors (renamed by rules) and checks that each
// one's pieces tile it as its placement says.
func layoutOf(tr *trace.Trace, rules *Rules) (*traceLayout, error) {
	if tr == nil || len(tr.Files) == 0 {
		return nil, &trace.Error{Msg: "empty trace: no rank files"}
	}
	first := tr.Files[0].Meta
	mesh := first.Mesh
	derive := tensor.Numel(mesh.Shape) == first.World
	tl := &traceLayout{tr: tr, byName: map[string]*layout{}}
	keys, strides := newKeyer(mesh.Shape), tensor.Strides(mesh.Shape)
	for _, f := range tr.Files {
		for _, e := range f.Entries {
			p := &piece{file: f, entry: e, rank: f.Meta.Rank, coord: pieceCoord(f, e, mesh, strides, derive)}
			name, err := rules.Apply(e.Meta.Name, p.coordOf(mesh))
			if err != nil {
				return nil, &trace.Error{File: f.Path, Tensor: e.Key, Field: "name", Msg: err.Error()}
			}
			l := tl.byName[name]
			if l == nil {
				l = &layout{name: name, kind: e.Meta.Kind, reduce: e.Meta.Reduce, order: e.Meta.Order, dtype: e.DType, place: e.Placement, mesh: mesh, dir: tr.Dir, keys: keys, fp: e.IsFingerprint()}
				tl.byName[name] = l
				tl.tensors = append(tl.tensors, l)
			} else if err := l.agrees(p); err != nil {
				return nil, err
			}
			l.order = min(l.order, e.Meta.Order)
			l.pieces = append(l.pieces, p)
			if l.shapeFrom == nil && e.Meta.Shape != nil {
				l.shapeFrom = p
			}
			l.stored += e.End - e.Begin
		}
	}
	for _, l := range tl.tensors {
		if err := l.resolve(); err != nil {
			return nil, err
		}
		tl.stored += l.stored
	}
	sort.Slice(tl.tensors, func(i, j int) bool {
		a, b := tl.tensors[i], tl.tensors[j]
		if a.order != b.order {
			return a.order < b.order
		}
		return a.name < b.name
	})
	return tl, nil
}

// keep drops the logical tensors whose name re does not match (nothing when re is nil).
func (tl *traceLayout) keep(re *regexp.Regexp) {
	if re == nil {
		return
	}
	tl.drop(func(l *layout) bool { return !re.MatchString(l.name) })
}

// drop removes the tensors for which out is true.
func (tl *traceLayout) drop(out func(*layout) bool) {
	tl.tensors = slices.DeleteFunc(tl.tensors, func(l *layout) bool {
		if !out(l) {
			return false
		}
		delete(tl.byName, l.name)
		tl.stored -= l.stored
		return true
	})
}

// pieceCoord gives the piece its coordinate on every mesh axis: the tensor's own coord, else
// the file's, else (when the mesh's axes multiply to the world size) the rank's row-major
// position, else -1.
func pieceCoord(f *trace.File, e *trace.Entry, mesh trace.Mesh, strides []int, derive bool) []int {
	c := make([]int, len(mesh.Axes))
	for i, a := range mesh.Axes {
		c[i] = -1
		if v, ok := e.Meta.Coord[a]; ok {
			c[i] = v
		} else if v, ok := f.Meta.Coord[a]; ok {
			c[i] = v
		} else if derive {
			c[i] = f.Meta.Rank / strides[i] % mesh.Shape[i]
		}
	}
	return c
}

func (p *piece) coordOf(mesh trace.Mesh) func(string) (int, bool) {
	return func(axis string) (int, bool) {
		i := slices.Index(mesh.Axes, axis)
		if i < 0 || p.coord[i] < 0 {
			return 0, false
		}
		return p.coord[i], true
	}
}

// errAt is a data error about this piece of l.
func (l *layout) errAt(p *piece, field, format string, args ...any) error {
	who := fmt.Sprintf("rank %d", p.rank)
	if p.entry.Key != l.name {
		who += fmt.Sprintf(" (key %q)", p.entry.Key)
	}
	return &trace.Error{File: p.file.Path, Tensor: l.name, Field: field, Msg: who + ": " + fmt.Sprintf(format, args...)}
}

// errAll is a data error about l as a whole.
func (l *layout) errAll(field, format string, args ...any) error {
	return &trace.Error{File: l.dir, Tensor: l.name, Field: field, Msg: fmt.Sprintf(format, args...)}
}

// agrees checks that a further piece describes the same logical tensor as the first.
func (l *layout) agrees(p *piece) error {
	p0 := l.pieces[0]
	e, e0 := p.entry, p0.entry
	switch {
	case e.Meta.Kind != e0.Meta.Kind:
		return l.errAt(p, "kind", "is %q, but rank %d says %q", e.Meta.Kind, p0.rank, e0.Meta.Kind)
	case e.DType != e0.DType:
		return l.errAt(p, "dtype", "is %v, but rank %d stores %v", e.DType, p0.rank, e0.DType)
	case !e.Placement.Equal(e0.Placement):
		return l.errAt(p, "place", "is %q, but rank %d says %q", e.Placement, p0.rank, e0.Placement)
	case e.IsFingerprint() != e0.IsFingerprint():
		return l.errAt(p, "fingerprint", "stored as a fingerprint: %v, but rank %d's piece: %v (a producer stores every piece of a tensor the same way)", e.IsFingerprint(), p0.rank, e0.IsFingerprint())
	case len(e.Shape) != len(e0.Shape):
		return l.errAt(p, "shape", "local shape %v has %d dims, but rank %d's %v has %d", e.Shape, len(e.Shape), p0.rank, e0.Shape, len(e0.Shape))
	}
	// Every earlier global shape equals the first one given, so comparing with it finds the
	// first that differs.
	if q := l.shapeFrom; e.Meta.Shape != nil && q != nil && !slices.Equal(e.Meta.Shape, q.entry.Meta.Shape) {
		return l.errAt(p, "shape", "global shape %v, but rank %d says %v", e.Meta.Shape, q.rank, q.entry.Meta.Shape)
	}
	return nil
}

// resolve works out the axis roles, the cells, the global shape and every cell's region, and
// checks that the pieces tile the tensor.
func (l *layout) resolve() error {
	l.indexShardAxes()
	if err := l.assignRoles(); err != nil {
		return err
	}
	if err := l.checkCoverage(); err != nil {
		return err
	}
	l.buildCells()
	if err := l.globalShape(); err != nil {
		return err
	}
	if err := l.checkSize(); err != nil {
		return err
	}
	return l.placeCells()
}

func (l *layout) assignRoles() error {
	l.roles = make([]axisRole, len(l.mesh.Axes))
	for i, axis := range l.mesh.Axes {
		ap := l.place.On(axis)
		known := 0
		var unknown *piece
		for _, p := range l.pieces {
			if p.coord[i] >= 0 {
				known++
			} else if unknown == nil {
				unknown = p
			}
		}
		switch ap.Kind {
		case trace.Shard, trace.Partial:
			if unknown != nil {
				return l.errAt(unknown, "coord", "the placement %q splits over axis %s, but this piece has no %s coordinate (give it in the tensor's coord or the file's)", l.place, axis, axis)
			}
			l.roles[i] = roleShard
			if ap.Kind == trace.Partial {
				l.roles[i] = rolePartial
				l.addReduction(ap.Op, l.mesh.Shape[i])
			}
		case trace.Stage:
			l.roles[i] = roleFree
		default:
			switch known {
			case len(l.pieces):
				l.roles[i] = roleReplicate
			case 0:
				l.roles[i] = roleFree
			default:
				return l.errAt(unknown, "coord", "has no %s coordinate, but other pieces of this tensor have one", axis)
			}
		}
	}
	return nil
}

// addReduction folds a partial axis of size n reducing by op into l.op and l.scale.
func (l *layout) addReduction(op trace.PartialOp, n int) {
	if !l.partial {
		l.partial, l.op, l.scale = true, trace.OpSum, 1
	}
	switch op {
	case trace.OpAvg:
		l.scale /= float64(n)
	case trace.OpMax, trace.OpMin:
		l.op = op
	}
}

// keyOn is the piece's coordinates on the axes for which keep is true, -1 on the others,
// written into k (reused when long enough).
func (l *layout) keyOn(k []int, p *piece, keep func(axisRole) bool) []int {
	k = slices.Grow(k[:0], len(p.coord))[:len(p.coord)]
	for i, c := range p.coord {
		k[i] = -1
		if keep(l.roles[i]) {
			k[i] = c
		}
	}
	return k
}

func isSplit(r axisRole) bool    { return r == roleShard || r == rolePartial }
func isRequired(r axisRole) bool { return r != roleFree }

// keyer numbers coordinate keys (−1 … size−1 on every mesh axis) for map lookups: one int in
// mixed radix when the mesh's coordinates fit one, else the decimal string.
type keyer struct {
	radix []int // per axis: size + 1; nil when the product does not fit an int
}

// coordKey is a keyer's key: n, or s when the mesh is too large for n.
type coordKey struct {
	n int
	s string
}

func newKeyer(shape []int) keyer {
	n := 1
	radix := make([]int, len(shape))
	for i, sz := range shape {
		if n > (1<<62)/(sz+1) {
			return keyer{}
		}
		radix[i] = sz + 1
		n *= sz + 1
	}
	return keyer{radix: radix}
}

func (kr keyer) of(k []int) coordKey {
	if kr.radix == nil || len(k) != len(kr.radix) {
		return coordKey{s: keyString(k)}
	}
	n := 0
	for i, c := range k {
		n = n*kr.radix[i] + c + 1
	}
	return coordKey{n: n}
}

func keyString(k []int) string {
	var b strings.Builder
	for _, c := range k {
		b.WriteString(strconv.Itoa(c))
		b.WriteByte(',')
	}
	return b.String()
}

// label names the coordinates of key on the axes where it has one, e.g. "tp=1,mb=0".
func (l *layout) label(key []int) string {
	var parts []string
	for i, c := range key {
		if c >= 0 {
			parts = append(parts, fmt.Sprintf("%s=%d", l.mesh.Axes[i], c))
		}
	}
	return strings.Join(parts, ",")
}

// checkCoverage refuses two pieces at one coordinate, and a sharded, partial or replicated
// coordinate that no piece holds.
func (l *layout) checkCoverage() error {
	seen := make(map[coordKey]*piece, len(l.pieces))
	for _, p := range l.pieces {
		k := l.keys.of(p.coord)
		if q := seen[k]; q != nil {
			return l.errAt(p, "coord", "rank %d (key %q) holds the same piece at %s: two pieces claim one shard", q.rank, q.entry.Key, l.label(p.coord))
		}
		seen[k] = p
	}
	held := make(map[coordKey]bool, len(l.pieces))
	var scratch []int
	for _, p := range l.pieces {
		scratch = l.keyOn(scratch, p, isRequired)
		held[l.keys.of(scratch)] = true
	}
	var axes []int
	need := 1
	for i, r := range l.roles {
		if isRequired(r) {
			axes = append(axes, i)
			need = min(need*l.mesh.Shape[i], 1<<40)
		}
	}
	if len(held) >= need {
		return nil
	}
	// Name the first coordinate nobody holds; at most len(held)+1 steps.
	k := make([]int, len(l.roles))
	for i := range k {
		k[i] = -1
	}
	for _, i := range axes {
		k[i] = 0
	}
	for held[l.keys.of(k)] {
		for j := len(axes) - 1; j >= 0; j-- {
			i := axes[j]
			if k[i]++; k[i] < l.mesh.Shape[i] {
				break
			}
			k[i] = 0
		}
	}
	place := fmt.Sprintf("placement %q (axes not listed are replicated)", l.place)
	if len(l.place) == 0 {
		place = "no placement (a full copy on every rank)"
	}
	return l.errAll("place", "no rank holds it at %s: %s needs a piece at every coordinate of axes %s, and %d of %d are held (mark an axis =stage if only some of its coordinates hold the tensor)",
		l.label(k), place, l.axisNames(axes), len(held), need)
}

func (l *layout) axisNames(axes []int) string {
	names := make([]string, len(axes))
	for j, i := range axes {
		names[j] = l.mesh.Axes[i]
	}
	return strings.Join(names, ",")
}

// buildCells groups the pieces by their (shard, partial) coordinates.
func (l *layout) buildCells() {
	byKey := make(map[coordKey]*cell, len(l.pieces))
	var k []int
	for _, p := range l.pieces {
		k = l.keyOn(k, p, isSplit)
		ks := l.keys.of(k)
		c := byKey[ks]
		if c == nil {
			c = &cell{key: slices.Clone(k)}
			byKey[ks] = c
			l.cells = append(l.cells, c)
		}
		c.copies = append(c.copies, p)
	}
	sort.Slice(l.cells, func(i, j int) bool { return slices.Compare(l.cells[i].key, l.cells[j].key) < 0 })
	// Cells with the same shard coordinates (summands of one partial block) share a position,
	// whatever the order of the partial and shard axes in the mesh.
	posOf := make(map[coordKey]int, len(l.cells))
	var sk []int
	for _, c := range l.cells {
		sk = l.shardKey(sk, c.key)
		s := l.keys.of(sk)
		p, ok := posOf[s]
		if !ok {
			p = len(posOf)
			posOf[s] = p
		}
		c.pos = p
	}
}

// shardKey keeps only the shard coordinates of a cell key (partial ones set to -1), written
// into s (reused when long enough).
func (l *layout) shardKey(s, k []int) []int {
	s = append(s[:0], k...)
	for i, r := range l.roles {
		if r != roleShard {
			s[i] = -1
		}
	}
	return s
}

// shardAxesOn lists the placement items sharding dim d, outermost first, and their mesh
// axes' indices.
func (l *layout) shardAxesOn(d int) ([]trace.AxisPlace, []int) {
	if d < len(l.axesOn) {
		return l.axesOn[d], l.axisIdx[d]
	}
	return nil, nil
}

// indexShardAxes fills axesOn and axisIdx for the dims of the first piece's local shape (every
// piece has as many: agrees).
func (l *layout) indexShardAxes() {
	nd := len(l.pieces[0].entry.Shape)
	l.axesOn, l.axisIdx = make([][]trace.AxisPlace, nd), make([][]int, nd)
	for _, ap := range l.place {
		if ap.Kind == trace.Shard && ap.Dim < nd {
			l.axesOn[ap.Dim] = append(l.axesOn[ap.Dim], ap)
			l.axisIdx[ap.Dim] = append(l.axisIdx[ap.Dim], slices.Index(l.mesh.Axes, ap.Axis))
		}
	}
}

// globalShape takes the global shape from the metadata or infers it from unpadded shards.
func (l *layout) globalShape() error {
	for _, p := range l.pieces {
		if p.entry.Meta.Shape != nil {
			l.shape = slices.Clone(p.entry.Meta.Shape)
			return nil
		}
	}
	p0 := l.pieces[0]
	l.shape = make([]int, len(p0.entry.Shape))
	for d := range l.shape {
		axes, _ := l.shardAxesOn(d)
		if len(axes) == 0 {
			l.shape[d] = p0.entry.Shape[d]
			continue
		}
		for _, ap := range axes {
			if ap.Block > 0 {
				return l.errAll("shape", "placement %q pads dim %d, so the global shape must be given (the tensor's shape field)", l.place, d)
			}
		}
		// Sum one local length per combination of the coordinates that shard d.
		lengths := map[string]int{}
		for _, p := range l.pieces {
			k := make([]int, len(axes))
			for j, ap := range axes {
				k[j] = p.coord[slices.Index(l.mesh.Axes, ap.Axis)]
			}
			ks := keyString(k)
			if n, ok := lengths[ks]; ok && n != p.entry.Shape[d] {
				return l.errAt(p, "shape", "local dim %d is %d, but another piece at the same %s coordinate has %d", d, p.entry.Shape[d], l.place, n)
			}
			lengths[ks] = p.entry.Shape[d]
		}
		for _, n := range lengths {
			l.shape[d] += n
		}
	}
	return nil
}

// maxElements bounds a global shape's element count, so that no product of dims can overflow
// (a damaged header could otherwise make a huge shape look small).
const maxElements = 1 << 48

func (l *layout) checkSize() error {
	n := 1
	for _, d := range l.shape {
		if d < 0 || (d > 0 && n > maxElements/d) {
			return l.errAll("shape", "global shape %v is negative or has more than 2^48 elements", l.shape)
		}
		n *= d
	}
	return nil
}

// placeCells computes every cell's global region and checks each piece's local shape against it.
func (l *layout) placeCells() error {
	covered := make([]int64, len(l.cells)) // by position
	nd := len(l.shape)
	padded := make([]int, nd)
	for _, c := range l.cells {
		bounds := make([]int, 2*nd)
		c.lo, c.hi, c.spans = bounds[:nd:nd], bounds[nd:], make([][]trace.Span, nd)
		for d, g := range l.shape {
			runs, pad := []trace.Span{{Lo: 0, Hi: g}}, -1
			axes, idx := l.shardAxesOn(d)
			for j, ap := range axes {
				ai := idx[j]
				var err error
				if runs, pad, err = ap.Spans(runs, l.mesh.Shape[ai], c.key[ai]); err != nil {
					return l.errAll("place", "global shape %v: %v", l.shape, err)
				}
			}
			c.spans[d], padded[d] = runs, pad
			c.lo[d], c.hi[d] = runs[0].Lo, runs[len(runs)-1].Hi
			for _, s := range runs {
				c.lo[d], c.hi[d] = min(c.lo[d], s.Lo), max(c.hi[d], s.Hi)
			}
			c.segmented = c.segmented || len(runs) > 1
		}
		box := c.box()
		for _, p := range c.copies {
			for d, n := range p.entry.Shape {
				if n != box[d] && n != padded[d] {
					return l.errAt(p, "shape", "local shape %v, but placement %q makes its piece of global shape %v a %v block (rows %s of dim %d)",
						p.entry.Shape, l.place, l.shape, box, runsString(c.spans[d]), d)
				}
			}
		}
		covered[c.pos] = int64(tensor.Numel(box))
	}
	var total int64
	for _, v := range covered {
		total += v
	}
	if want := int64(tensor.Numel(l.shape)); total != want {
		return l.errAll("place", "its shards cover %d of the %d elements of global shape %v: placement %q leaves a gap", total, want, l.shape, l.place)
	}
	return nil
}

func boxShape(lo, hi []int) []int {
	s := make([]int, len(lo))
	for i := range lo {
		s[i] = hi[i] - lo[i]
	}
	return s
}
