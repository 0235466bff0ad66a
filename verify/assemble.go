package verify

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"math"
	"slices"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Logical is a logical tensor rebuilt from its pieces.
type Logical struct {
	Name     string
	Kind     trace.Kind
	Order    int
	DType    tensor.DType
	Shape    []int  // global shape
	Place    string // placement, as the trace gives it
	Raw      []byte // canonical little-endian bytes of the global tensor in DType
	Ranks    []int  // ranks holding a piece, ascending
	Replicas []Disagreement
}

// Disagreement is one piece of a tensor whose copies (on replicated or stage axes) disagree
// beyond the tolerance.
type Disagreement struct {
	Cell   string  // coordinates of the piece on its shard and partial axes ("tp=0"); "" if unsplit
	Groups [][]int // ranks whose copies agree with each other; the lowest rank's group first
	MaxAbs float64 // the largest element difference from the lowest rank's copy
}

// Dense decodes the tensor.
func (l *Logical) Dense() *tensor.Dense {
	return tensor.FromData(l.Shape, tensor.Decode(l.DType, l.Raw, make([]float64, 0, tensor.Numel(l.Shape))))
}

// MD5 is the hex MD5 of the canonical bytes.
func (l *Logical) MD5() string { return tensor.MD5Bytes(l.Raw) }

// Assemble rebuilds every logical tensor of tr from its pieces by placement, ordered by execution
// order then name. Copies that should agree are checked at the dtype's default tolerance; a
// disagreement is recorded in Replicas, not returned as an error. Errors are problems with the
// trace (a missing shard, two ranks claiming one, local shapes the placement cannot make).
func Assemble(tr *trace.Trace) ([]*Logical, error) {
	tl, err := layoutOf(tr, nil)
	if err != nil {
		return nil, err
	}
	var a assembler
	out := make([]*Logical, 0, len(tl.tensors))
	for _, l := range tl.tensors {
		raw, reps, err := a.assemble(l, nil, DefaultRTol(l.dtype))
		if err != nil {
			return nil, err
		}
		out = append(out, l.logical(raw, reps))
	}
	return out, nil
}

func (l *layout) logical(raw []byte, reps []Disagreement) *Logical {
	return &Logical{Name: l.name, Kind: l.kind, Order: l.order, DType: l.dtype, Shape: slices.Clone(l.shape),
		Place: l.place.String(), Raw: raw, Ranks: l.ranks(), Replicas: reps}
}

func (l *layout) ranks() []int { return pieceRanks(l.pieces) }

// pieceRanks is the sorted, distinct ranks holding ps.
func pieceRanks(ps []*piece) []int {
	var rs []int
	for _, p := range ps {
		if !slices.Contains(rs, p.rank) {
			rs = append(rs, p.rank)
		}
	}
	slices.Sort(rs)
	return rs
}

// maxLeaders bounds how many distinct disagreeing copies of one piece are kept to compare
// further copies against; copies matching none of them join the last group.
const maxLeaders = 4

// assembler rebuilds logical tensors, reusing its buffers from one tensor to the next so that
// streaming a trace allocates only when a larger tensor comes.
type assembler struct {
	local, other, compact, compact2 []byte
	acc                             []float64
	// absAcc is Σ_q |x_q| of the last partial tensor assembled: the magnitude its summands'
	// rounding scales with (see partialScale).
	absAcc []float64
	fbuf   []float64
}

// assemble rebuilds l into dst (reused when large enough) and returns the bytes and any
// replica mismatches, copies being compared at rtol.
func (a *assembler) assemble(l *layout, dst []byte, rtol float64) ([]byte, []Disagreement, error) {
	es := l.dtype.Size()
	dst = growBytes(dst, tensor.Numel(l.shape)*es)
	if dst == nil {
		dst = []byte{}
	}
	if l.partial {
		a.acc = growFloats(a.acc, tensor.Numel(l.shape))
		a.absAcc = growFloats(a.absAcc, tensor.Numel(l.shape))
		clear(a.absAcc)
		switch l.op {
		case trace.OpMax:
			fill(a.acc, math.Inf(-1))
		case trace.OpMin:
			fill(a.acc, math.Inf(1))
		default:
			clear(a.acc)
		}
	}
	var reps []Disagreement
	for _, c := range l.cells {
		rep := c.copies[0]
		box := c.box()
		var repReal []byte
		if !l.partial && !c.segmented && slices.Equal(rep.entry.Shape, box) && contiguous(l.shape, c.lo, c.hi) {
			// The piece is exactly one contiguous span of the global tensor: read it in place.
			off := flatIndex(l.shape, c.lo) * es
			repReal = dst[off : off+tensor.Numel(box)*es]
			if err := rep.file.ReadRaw(rep.entry, repReal); err != nil {
				return nil, nil, err
			}
		} else {
			var err error
			a.local, err = readPiece(rep, a.local)
			if err != nil {
				return nil, nil, err
			}
			a.compact = compactBox(a.local, rep.entry.Shape, box, es, a.compact)
			repReal = a.compact
			if l.partial {
				a.addInto(l, c, repReal)
			} else {
				l.cellRuns(c, func(d, s, n int) {
					copy(dst[d*es:(d+n)*es], repReal[s*es:(s+n)*es])
				})
			}
		}
		if len(c.copies) > 1 {
			rm, err := a.checkCopies(l, c, repReal, box, rtol)
			if err != nil {
				return nil, nil, err
			}
			if rm != nil {
				reps = append(reps, *rm)
			}
		}
	}
	if l.partial {
		for i, v := range a.acc {
			if l.scale != 1 {
				v *= l.scale
				a.absAcc[i] *= l.scale
			}
			l.dtype.PutValue(dst[i*es:], v)
		}
	}
	return dst, reps, nil
}

// partialScale returns, for a partial tensor just assembled, Σ_q |x_q| per element copied into
// buf (nil for any other layout). Each summand was rounded to the storage dtype on its own
// rank, so the sum carries rounding error up to u·Σ|x_q|, which exceeds u·|Σ x_q| wherever the
// summands cancel: the tolerance must scale with the summands, not with the sum. (A mean's is
// scaled like the mean; a max or min's is max_q |x_q|, the rounding of the operand it picks.)
func (a *assembler) partialScale(l *layout, buf []float64) []float64 {
	if !l.partial {
		return nil
	}
	buf = growFloats(buf, len(a.absAcc))
	copy(buf, a.absAcc)
	return buf
}

// readPiece reads a piece's stored bytes into buf (grown as needed).
func readPiece(p *piece, buf []byte) ([]byte, error) {
	buf = growBytes(buf, int(p.entry.End-p.entry.Begin))
	return buf, p.file.ReadRaw(p.entry, buf)
}

// compactBox returns the leading box of a local array of shape local (its real rows, padding
// dropped) as a compact array; it is local itself when nothing is padded.
func compactBox(local []byte, shape, box []int, es int, buf []byte) []byte {
	if slices.Equal(shape, box) {
		return local
	}
	buf = growBytes(buf, tensor.Numel(box)*es)
	boxRuns(box, zeros(len(box)), shape, zeros(len(box)), box, func(d, s, n int) {
		copy(buf[d*es:(d+n)*es], local[s*es:(s+n)*es])
	})
	return buf
}

// addInto folds a partial operand (compact, of shape c.box()) into the accumulator at c's
// region: a sum (scaled at the end for avg axes), or an element-wise max or min.
func (a *assembler) addInto(l *layout, c *cell, src []byte) {
	es := l.dtype.Size()
	l.cellRuns(c, func(d, s, n int) {
		for i := 0; i < n; i++ {
			v := l.dtype.Value(src[(s+i)*es:])
			switch l.op {
			case trace.OpMax:
				a.acc[d+i] = max(a.acc[d+i], v)
				a.absAcc[d+i] = max(a.absAcc[d+i], math.Abs(v))
			case trace.OpMin:
				a.acc[d+i] = min(a.acc[d+i], v)
				a.absAcc[d+i] = max(a.absAcc[d+i], math.Abs(v))
			default:
				a.acc[d+i] += v
				a.absAcc[d+i] += math.Abs(v)
			}
		}
	})
}

func fill(xs []float64, v float64) {
	for i := range xs {
		xs[i] = v
	}
}

// checkCopies compares every further copy of cell c with the representative (repReal, compact).
func (a *assembler) checkCopies(l *layout, c *cell, repReal []byte, box []int, rtol float64) (*Disagreement, error) {
	es := l.dtype.Size()
	leaders := [][]byte{repReal}
	groups := [][]int{{c.copies[0].rank}}
	var maxAbs float64
	for _, q := range c.copies[1:] {
		var err error
		a.other, err = readPiece(q, a.other)
		if err != nil {
			return nil, err
		}
		a.compact2 = compactBox(a.other, q.entry.Shape, box, es, a.compact2)
		qb := a.compact2
		g := -1
		for i, lead := range leaders {
			if bytes.Equal(lead, qb) || compareRaw(l.dtype, lead, l.dtype, qb, box, rtol, 0, nil, &a.fbuf).Pass() {
				g = i
				break
			}
		}
		if !bytes.Equal(repReal, qb) {
			m := compareRaw(l.dtype, repReal, l.dtype, qb, box, rtol, 0, nil, &a.fbuf)
			maxAbs = max(maxAbs, m.MaxAbs)
			if m.NonFinite > 0 {
				maxAbs = math.Inf(1)
			}
		}
		switch {
		case g >= 0:
		case len(leaders) < maxLeaders:
			leaders = append(leaders, bytes.Clone(qb))
			groups = append(groups, nil)
			g = len(groups) - 1
		default:
			g = len(groups) - 1
		}
		groups[g] = append(groups[g], q.rank)
	}
	if len(groups) == 1 {
		return nil, nil
	}
	return &Disagreement{Cell: l.label(c.key), Groups: groups, MaxAbs: maxAbs}, nil
}

// md5Hex hashes raw bytes.
func md5Hex(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
