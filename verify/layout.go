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
	fp     bool  // stored as fingerprints (every piece is)
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
	tl := &traceLayout{tr: tr, byName: map[string]*layout{}}
	for _, f := range tr.Files {
		for _, e := range f.Entries {
			p := &piece{file: f, entry: e, rank: f.Meta.Rank, coord: trace.PieceCoord(&f.Meta, &e.Meta)}
			name, err := rules.Apply(e.Meta.Name, p.coordOf(mesh))
			if err != nil {
				return nil, &trace.Error{File: f.Path, Tensor: e.Key, Field: "name", Msg: err.Error()}
			}
			l := tl.byName[name]
			if l == nil {
				l = &layout{name: name, kind: e.Meta.Kind, order: e.Meta.Order, dtype: e.DType, place: e.Placement, mesh: mesh, dir: tr.Dir, fp: e.IsFingerprint()}
				tl.byName[name] = l
				tl.tensors = append(tl.tensors, l)
			} else if err := l.agrees(p); err != nil {
				return nil, err
			}
			l.order = min(l.order, e.Meta.Order)
			l.pieces = append(l.pieces, p)
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
	tl.tensors = slices.DeleteFunc(tl.tensors, func(l *layout) bool {
		if re.MatchString(l.name) {
			return false
		}
		delete(tl.byName, l.name)
		tl.stored -= l.stored
		return true
	})
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
	case e.Placement.String() != e0.Placement.String():
		return l.errAt(p, "place", "is %q, but rank %d says %q", e.Placement, p0.rank, e0.Placement)
	case e.IsFingerprint() != e0.IsFingerprint():
		return l.errAt(p, "fingerprint", "stored as a fingerprint: %v, but rank %d's piece: %v (a producer stores every piece of a tensor the same way)", e.IsFingerprint(), p0.rank, e0.IsFingerprint())
	case len(e.Shape) != len(e0.Shape):
		return l.errAt(p, "shape", "local shape %v has %d dims, but rank %d's %v has %d", e.Shape, len(e.Shape), p0.rank, e0.Shape, len(e0.Shape))
	}
	for _, q := range l.pieces {
		if e.Meta.Shape != nil && q.entry.Meta.Shape != nil && !slices.Equal(e.Meta.Shape, q.entry.Meta.Shape) {
			return l.errAt(p, "shape", "global shape %v, but rank %d says %v", e.Meta.Shape, q.rank, q.entry.Meta.Shape)
		}
	}
	return nil
}

// resolve works out the axis roles, the cells, the global shape and every cell's region, and
// checks that the pieces tile the tensor.
func (l *layout) resolve() error {
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

// keyOn is the piece's coordinates on the axes for which keep is true, -1 on the others.
func (l *layout) keyOn(p *piece, keep func(axisRole) bool) []int {
	k := make([]int, len(p.coord))
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
	seen := map[string]*piece{}
	for _, p := range l.pieces {
		k := keyString(p.coord)
		if q := seen[k]; q != nil {
			return l.errAt(p, "coord", "rank %d (key %q) holds the same piece at %s: two pieces claim one shard", q.rank, q.entry.Key, l.label(p.coord))
		}
		seen[k] = p
	}
	held := map[string]bool{}
	for _, p := range l.pieces {
		held[keyString(l.keyOn(p, isRequired))] = true
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
	for held[keyString(k)] {
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
	byKey := map[string]*cell{}
	for _, p := range l.pieces {
		k := l.keyOn(p, isSplit)
		ks := keyString(k)
		c := byKey[ks]
		if c == nil {
			c = &cell{key: k}
			byKey[ks] = c
			l.cells = append(l.cells, c)
		}
		c.copies = append(c.copies, p)
	}
	sort.Slice(l.cells, func(i, j int) bool { return slices.Compare(l.cells[i].key, l.cells[j].key) < 0 })
	// Cells with the same shard coordinates (summands of one partial block) share a position,
	// whatever the order of the partial and shard axes in the mesh.
	posOf := map[string]int{}
	for _, c := range l.cells {
		s := keyString(l.shardKey(c.key))
		p, ok := posOf[s]
		if !ok {
			p = len(posOf)
			posOf[s] = p
		}
		c.pos = p
	}
}

// shardKey keeps only the shard coordinates of a cell key (partial ones set to -1).
func (l *layout) shardKey(k []int) []int {
	s := slices.Clone(k)
	for i, r := range l.roles {
		if r != roleShard {
			s[i] = -1
		}
	}
	return s
}

// shardAxesOn lists the placement items sharding dim d, outermost first.
func (l *layout) shardAxesOn(d int) []trace.AxisPlace {
	var out []trace.AxisPlace
	for _, ap := range l.place {
		if ap.Kind == trace.Shard && ap.Dim == d {
			out = append(out, ap)
		}
	}
	return out
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
		axes := l.shardAxesOn(d)
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
	covered := map[int]int64{}
	for _, c := range l.cells {
		nd := len(l.shape)
		c.lo, c.hi = make([]int, nd), make([]int, nd)
		var padded []int
		var err error
		if c.spans, padded, err = trace.PieceSpans(l.place, l.mesh, c.key, l.shape); err != nil {
			return l.errAll("place", "%v", err)
		}
		for d, runs := range c.spans {
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
