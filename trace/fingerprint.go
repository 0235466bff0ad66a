package trace

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"

	"github.com/spcheck/spcheck/tensor"
)

// Fingerprints (docs/trace-format.md, "Fingerprints"): a tensor stored as what a verdict needs
// instead of its data. Every quantity is defined on the GLOBAL (logical) tensor and adds up over
// disjoint pieces, so each rank computes its part alone and the verifier combines them: an
// equality hash that is a sum over elements keyed by their global flat index, the count of
// non-finite elements, sums, a sample of elements chosen by a counter-based hash of (name,
// global index), and per-block sketches along every dim.

// FingerprintVersion is the trace version a file holding fingerprints declares; files without
// any keep Version, so readers that predate fingerprints refuse only files that have them.
const FingerprintVersion = 2

const (
	// DefaultSamples is the sample size producers aim at: each element of a tensor of n > S
	// elements is drawn with probability S/n, independently of sharding. 1024 elements find a
	// structured error (a block, a row, a shard) with near certainty and cost 16 KiB a tensor.
	DefaultSamples = 1024
	// SketchBlocks is how many blocks each dim is cut into for the sketches (fewer when the dim
	// is shorter): 16 blocks localise an error to 1/16 of a dim without growing the record.
	SketchBlocks = 16
	// statFields is the record's leading stats: Σx, Σx², Σ|x|, max|x| over finite elements.
	statFields = 4
	// maxSketchBlocks bounds what a file may claim per dim.
	maxSketchBlocks = 1 << 16
)

// hashLane1 derives the second lane of an element's equality hash from its first:
// lane0 = splitmix64(bits XOR splitmix64(g)), lane1 = splitmix64(lane0 XOR hashLane1).
const hashLane1 = 0xD1B54A32D192ED03

// FingerprintMeta is the "fingerprint" object of a tensor's metadata. The tensor key then stores
// the record (F64, 1-D): Σx, Σx², Σ|x|, max|x|, then Samples global flat indices, then Samples
// values, then for every dim d Blocks[d] block sums followed by Blocks[d] block sums of squares.
type FingerprintMeta struct {
	DType     string `json:"dtype"`         // the tensor's dtype (its values are rounded to it)
	Shape     []int  `json:"shape"`         // the local shape the rank holds (padded shards included)
	Hash      string `json:"hash"`          // 32 hex digits: the two 64-bit lanes of the equality hash
	MD5       string `json:"md5,omitempty"` // MD5 of the canonical bytes, when the piece is the whole tensor
	NonFinite int64  `json:"nonfinite"`     // NaN and ±Inf elements of the piece
	Samples   int    `json:"samples"`       // sampled elements in the record
	Blocks    []int  `json:"blocks"`        // sketch blocks per dim of the global shape
}

// recordLen is the length of the record the metadata describes.
func (fm *FingerprintMeta) recordLen() int {
	n := statFields + 2*fm.Samples
	for _, b := range fm.Blocks {
		n += 2 * b
	}
	return n
}

// Fingerprint is a decoded fingerprint: of one stored piece, or of a logical tensor once the
// verifier has combined its pieces.
type Fingerprint struct {
	DType     tensor.DType
	Hash      [2]uint64
	MD5       string
	NonFinite int64
	Sum       float64 // Σx over finite elements
	SumSq     float64 // Σx²
	SumAbs    float64 // Σ|x|
	MaxAbs    float64 // max |x|
	// Numel is the number of real (unpadded) elements covered: set by ComputeFingerprint, and by
	// the verifier for the pieces it reads.
	Numel  int64
	Index  []int64 // sampled global flat indices, ascending
	Value  []float64
	Blocks []int       // per dim of the global shape
	Sketch [][]float64 // per dim: Blocks[d] sums, then Blocks[d] sums of squares
}

// HashString prints the equality hash as FingerprintMeta.Hash does.
func (fp *Fingerprint) HashString() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], fp.Hash[0])
	binary.BigEndian.PutUint64(b[8:], fp.Hash[1])
	return hex.EncodeToString(b[:])
}

// SampleKey is the counter-based generator that draws a tensor's sample: element g (global flat
// index) of a tensor of n elements is sampled when Bits(g) < SampleThreshold(n, S) —
// tensor.NewRNG(0, name), the RNG every executor already implements.
func SampleKey(name string) tensor.RNG { return tensor.NewRNG(0, name) }

// SampleThreshold is ⌊S·2⁶⁴/n⌋, the bound under which Bits(g) selects element g: each element
// with probability S/n, every one when n ≤ S. A smaller S selects a subset of a larger one's.
func SampleThreshold(n, samples int) uint64 {
	if n <= samples {
		return math.MaxUint64
	}
	if samples <= 0 {
		return 0
	}
	q, _ := bits.Div64(uint64(samples), 0, uint64(n))
	return q
}

// sketchBlocks is the number of sketch blocks of a dim of n rows.
func sketchBlocks(n int) int { return min(n, SketchBlocks) }

// blockOf is the sketch block of row r of a dim of n rows cut into b blocks.
func blockOf(r, n, b int) int { return int(int64(r) * int64(b) / int64(n)) }

// ComputeFingerprint fingerprints one piece of the logical tensor name: raw holds its canonical
// bytes in dt, of local shape local (padding rows included); global is the logical shape and
// spans lists, per dim, the global runs whose concatenation the piece's real rows are (what
// PieceSpans returns). samples is the sample size aimed at (DefaultSamples).
func ComputeFingerprint(name string, dt tensor.DType, raw []byte, local, global []int, spans [][]Span, samples int) *Fingerprint {
	nd := len(global)
	fp := &Fingerprint{DType: dt, Blocks: make([]int, nd), Sketch: make([][]float64, nd)}
	for d, g := range global {
		fp.Blocks[d] = sketchBlocks(g)
		fp.Sketch[d] = make([]float64, 2*fp.Blocks[d])
	}
	if nd == 0 { // a scalar: one element, its own row
		global, local, spans = []int{1}, []int{1}, [][]Span{{{Lo: 0, Hi: 1}}}
		defer func() { fp.Blocks, fp.Sketch = []int{}, [][]float64{} }()
		fp.Blocks, fp.Sketch = []int{1}, [][]float64{make([]float64, 2)}
		nd = 1
	}
	thr := SampleThreshold(tensor.Numel(global), samples)
	key := SampleKey(name)
	// Per dim: the global row and sketch block of every real local row.
	rows := make([][]int, nd)
	blocks := make([][]int, nd)
	box := make([]int, nd)
	for d := range global {
		for _, s := range spans[d] {
			for r := s.Lo; r < s.Hi; r++ {
				rows[d] = append(rows[d], r)
				blocks[d] = append(blocks[d], blockOf(r, global[d], fp.Blocks[d]))
			}
		}
		if box[d] = len(rows[d]); box[d] == 0 {
			return fp
		}
	}
	gStrides, lStrides := tensor.Strides(global), tensor.Strides(local)
	last := nd - 1
	lastRows, lastBlocks, lastSketch, lastB := rows[last], blocks[last], fp.Sketch[last], fp.Blocks[last]
	es := dt.Size()
	idx := make([]int, nd)
	for {
		// One row of the last dim: its outer coordinates are fixed.
		var gBase, lBase int
		for d := 0; d < last; d++ {
			gBase += rows[d][idx[d]] * gStrides[d]
			lBase += idx[d] * lStrides[d]
		}
		var rowSum, rowSq float64
		for i, r := range lastRows {
			at := (lBase + i) * es
			b := raw[at : at+es]
			var bitsV uint64
			var v float64
			switch dt {
			case tensor.F64:
				bitsV = binary.LittleEndian.Uint64(b)
				v = math.Float64frombits(bitsV)
			case tensor.F32:
				bitsV = uint64(binary.LittleEndian.Uint32(b))
				v = float64(math.Float32frombits(uint32(bitsV)))
			default:
				bitsV = canonicalBits(b)
				v = dt.Value(b)
			}
			g := uint64(gBase + r)
			h0 := tensor.SplitMix64(bitsV ^ tensor.SplitMix64(g))
			fp.Hash[0] += h0
			fp.Hash[1] += tensor.SplitMix64(h0 ^ hashLane1)
			if key.Bits(g) < thr {
				fp.Index = append(fp.Index, int64(g))
				fp.Value = append(fp.Value, v)
			}
			if math.IsNaN(v) || math.IsInf(v, 0) {
				fp.NonFinite++
				continue
			}
			sq := float64(v * v)
			a := math.Abs(v)
			fp.Sum += v
			fp.SumSq += sq
			fp.SumAbs += a
			fp.MaxAbs = max(fp.MaxAbs, a)
			k := lastBlocks[i]
			lastSketch[k] += v
			lastSketch[lastB+k] += sq
			rowSum += v
			rowSq += sq
		}
		fp.Numel += int64(len(lastRows))
		for d := 0; d < last; d++ {
			k := blocks[d][idx[d]]
			fp.Sketch[d][k] += rowSum
			fp.Sketch[d][fp.Blocks[d]+k] += rowSq
		}
		d := last - 1
		for ; d >= 0; d-- {
			if idx[d]++; idx[d] < box[d] {
				break
			}
			idx[d] = 0
		}
		if d < 0 {
			break
		}
	}
	if len(fp.Index) > 1 && !slices.IsSorted(fp.Index) { // spans out of global order (segments)
		sortSamples(fp)
	}
	return fp
}

// canonicalBits reads one element's canonical little-endian bytes as an unsigned integer.
func canonicalBits(b []byte) uint64 {
	switch len(b) {
	case 8:
		return binary.LittleEndian.Uint64(b)
	case 4:
		return uint64(binary.LittleEndian.Uint32(b))
	case 2:
		return uint64(binary.LittleEndian.Uint16(b))
	}
	return 0
}

// sortSamples orders the sample by index.
func sortSamples(fp *Fingerprint) {
	order := make([]int, len(fp.Index))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return int(fp.Index[a] - fp.Index[b]) })
	idx, val := make([]int64, len(order)), make([]float64, len(order))
	for j, i := range order {
		idx[j], val[j] = fp.Index[i], fp.Value[i]
	}
	fp.Index, fp.Value = idx, val
}

// CombineFingerprints adds the fingerprints of disjoint pieces of one logical tensor (its shards)
// into the fingerprint of their union: hashes, counts, sums and sketches add, max|x| is the max,
// samples are merged. The pieces must share dtype and sketch blocks (the caller checks).
func CombineFingerprints(parts []*Fingerprint) *Fingerprint {
	out := &Fingerprint{DType: parts[0].DType, Blocks: slices.Clone(parts[0].Blocks), Sketch: make([][]float64, len(parts[0].Blocks))}
	for d, b := range out.Blocks {
		out.Sketch[d] = make([]float64, 2*b)
	}
	for _, p := range parts {
		out.Hash[0] += p.Hash[0]
		out.Hash[1] += p.Hash[1]
		out.NonFinite += p.NonFinite
		out.Numel += p.Numel
		out.Sum += p.Sum
		out.SumSq += p.SumSq
		out.SumAbs += p.SumAbs
		out.MaxAbs = max(out.MaxAbs, p.MaxAbs)
		out.Index = append(out.Index, p.Index...)
		out.Value = append(out.Value, p.Value...)
		for d := range out.Sketch {
			for i, v := range p.Sketch[d] {
				out.Sketch[d][i] += v
			}
		}
	}
	if len(parts) == 1 {
		out.MD5 = parts[0].MD5
	}
	sortSamples(out)
	return out
}

// meta and record render fp as the metadata object and the stored record.
func (fp *Fingerprint) meta(local []int) *FingerprintMeta {
	return &FingerprintMeta{DType: fp.DType.String(), Shape: slices.Clone(local), Hash: fp.HashString(), MD5: fp.MD5,
		NonFinite: fp.NonFinite, Samples: len(fp.Index), Blocks: slices.Clone(fp.Blocks)}
}

func (fp *Fingerprint) record() []float64 {
	rec := []float64{fp.Sum, fp.SumSq, fp.SumAbs, fp.MaxAbs}
	for _, g := range fp.Index {
		rec = append(rec, float64(g))
	}
	rec = append(rec, fp.Value...)
	for _, s := range fp.Sketch {
		rec = append(rec, s...)
	}
	return rec
}

// checkFingerprintMeta validates the metadata object of entry e (global is the tensor's global
// shape) and returns the tensor's dtype; the caller has checked the stored record's length.
func checkFingerprintMeta(fm *FingerprintMeta, global []int) (tensor.DType, error) {
	dt, err := tensor.ParseDType(fm.DType)
	if err != nil {
		return 0, fieldErr("fingerprint.dtype", "%v", err)
	}
	if len(fm.Shape) > 64 {
		return 0, fieldErr("fingerprint.shape", "has %d dims", len(fm.Shape))
	}
	numel := int64(1)
	for _, d := range fm.Shape {
		if d < 0 || (d > 0 && numel > math.MaxInt64/int64(d)/8) {
			return 0, fieldErr("fingerprint.shape", "%v is negative or too large", fm.Shape)
		}
		numel *= int64(d)
	}
	if global == nil {
		return 0, fieldErr("shape", "a fingerprinted tensor needs its global shape (sampled indices and sketches are global)")
	}
	if len(fm.Hash) != 32 {
		return 0, fieldErr("fingerprint.hash", "is %q, want 32 hex digits", fm.Hash)
	}
	if _, err := hex.DecodeString(fm.Hash); err != nil {
		return 0, fieldErr("fingerprint.hash", "is %q, want 32 hex digits", fm.Hash)
	}
	if fm.MD5 != "" {
		if _, err := hex.DecodeString(fm.MD5); err != nil || len(fm.MD5) != 32 {
			return 0, fieldErr("fingerprint.md5", "is %q, want 32 hex digits", fm.MD5)
		}
	}
	if fm.NonFinite < 0 || fm.NonFinite > numel {
		return 0, fieldErr("fingerprint.nonfinite", "is %d for a piece of %d elements", fm.NonFinite, numel)
	}
	if fm.Samples < 0 || int64(fm.Samples) > numel {
		return 0, fieldErr("fingerprint.samples", "is %d for a piece of %d elements", fm.Samples, numel)
	}
	if len(fm.Blocks) != len(global) {
		return 0, fieldErr("fingerprint.blocks", "has %d values for a rank-%d tensor", len(fm.Blocks), len(global))
	}
	for d, b := range fm.Blocks {
		if b < 0 || b > maxSketchBlocks || (d < len(global) && b > global[d]) {
			return 0, fieldErr("fingerprint.blocks", "dim %d: %d blocks for %d rows", d, b, global[d])
		}
	}
	return dt, nil
}

// Fingerprint reads and validates the fingerprint record of e (an entry whose metadata has a
// fingerprint). Errors name the file, the tensor key and the field.
func (f *File) Fingerprint(e *Entry) (*Fingerprint, error) {
	fm := e.Meta.Fingerprint
	if fm == nil {
		return nil, &Error{File: f.Path, Tensor: e.Key, Field: "fingerprint", Msg: "the tensor is stored in full, not as a fingerprint"}
	}
	buf := make([]byte, e.End-e.Begin)
	if _, err := f.r.ReadAt(buf, f.dataOff+e.Begin); err != nil {
		return nil, &Error{File: f.Path, Tensor: e.Key, Field: "data", Msg: err.Error()}
	}
	rec := tensor.Decode(tensor.F64, buf, make([]float64, 0, len(buf)/8))
	fail := func(field, format string, args ...any) error {
		return &Error{File: f.Path, Tensor: e.Key, Field: field, Msg: fmt.Sprintf(format, args...)}
	}
	hb, _ := hex.DecodeString(fm.Hash)
	fp := &Fingerprint{DType: e.DType, MD5: fm.MD5, NonFinite: fm.NonFinite, Blocks: slices.Clone(fm.Blocks),
		Hash: [2]uint64{binary.BigEndian.Uint64(hb[:8]), binary.BigEndian.Uint64(hb[8:])}}
	fp.Sum, fp.SumSq, fp.SumAbs, fp.MaxAbs = rec[0], rec[1], rec[2], rec[3]
	if fp.SumSq < 0 || fp.SumAbs < 0 || fp.MaxAbs < 0 {
		return nil, fail("fingerprint", "record: Σx², Σ|x| and max|x| must not be negative (%g, %g, %g)", fp.SumSq, fp.SumAbs, fp.MaxAbs)
	}
	n := float64(tensor.Numel(e.Meta.Shape))
	at := statFields
	fp.Index = make([]int64, fm.Samples)
	for i := range fp.Index {
		g := rec[at+i]
		if !(g >= 0 && g < n) || g != math.Trunc(g) {
			return nil, fail("fingerprint.samples", "sample %d: index %s is not an element of global shape %v", i, strconv.FormatFloat(g, 'g', -1, 64), e.Meta.Shape)
		}
		fp.Index[i] = int64(g)
		if i > 0 && fp.Index[i] <= fp.Index[i-1] {
			return nil, fail("fingerprint.samples", "sample %d: index %d does not follow %d (indices must ascend)", i, fp.Index[i], fp.Index[i-1])
		}
	}
	at += fm.Samples
	fp.Value = slices.Clone(rec[at : at+fm.Samples])
	at += fm.Samples
	fp.Sketch = make([][]float64, len(fm.Blocks))
	for d, b := range fm.Blocks {
		fp.Sketch[d] = slices.Clone(rec[at : at+2*b])
		at += 2 * b
	}
	fp.Numel = int64(tensor.Numel(e.Shape))
	return fp, nil
}
