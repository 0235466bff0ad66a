package trace

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// PlaceKind is how a tensor is laid out along one mesh axis.
type PlaceKind uint8

const (
	// Replicate: every coordinate of the axis holds the same full copy.
	Replicate PlaceKind = iota + 1
	// Shard: coordinate i holds block i of dim Dim (see AxisPlace.Range).
	Shard
	// Partial: coordinate i holds an operand of a reduction (AxisPlace.Op, a sum by default);
	// the logical tensor is that reduction over the axis.
	Partial
	// Stage: only some coordinates hold the tensor (a pipeline stage's own tensors, or a
	// weight shared by the first and last stage); where held, copies must agree.
	Stage
)

// PartialOp is the reduction that combines the operands of a Partial axis.
type PartialOp uint8

const (
	// OpSum: the logical tensor is the sum of the operands (a row-parallel output before its
	// all-reduce; DTensor Partial("sum")).
	OpSum PartialOp = iota
	// OpAvg: their mean (DTensor Partial("avg"); a data-parallel mean before its all-reduce).
	OpAvg
	// OpMax, OpMin: their element-wise maximum / minimum (DTensor Partial("max"/"min")).
	OpMax
	OpMin
)

var opNames = [...]string{OpSum: "sum", OpAvg: "avg", OpMax: "max", OpMin: "min"}

func (o PartialOp) String() string {
	if int(o) < len(opNames) {
		return opNames[o]
	}
	return "?"
}

// Linear reports whether the reduction is a linear combination (sum or mean): such axes
// compose with each other in any order; max and min do not.
func (o PartialOp) Linear() bool { return o == OpSum || o == OpAvg }

// AxisPlace is the placement of a tensor along one named mesh axis.
type AxisPlace struct {
	Axis  string
	Kind  PlaceKind
	Dim   int // Shard only
	Block int // Shard only: rows per shard (0 = ceil(n/parts)); shards may be padded to Block
	// Segments (Shard only) cuts the dim into segments that are each sharded on their own: a
	// coordinate holds its chunk of every segment, concatenated in segment order. Nil: one
	// segment. One value k: k equal segments, ceil-sized as torch.chunk cuts them (DTensor's
	// _StridedShard with split_factor k, HF's packed gate_up). Several: their lengths (vLLM's QKVParallelLinear, q:k:v rows).
	Segments []int
	Op       PartialOp // Partial only
}

// maxSegments bounds the segments of one shard spec (a fused projection has a handful).
const maxSegments = 64

// Placement lists a tensor's layout per axis, outermost split first: "dp=shard(0),tp=shard(0)"
// splits dim 0 by dp, then each dp block by tp. Axes not listed are replicated.
type Placement []AxisPlace

// validAxisName reports whether s matches [a-z][a-z0-9_]*. (Parsed by hand: placements are
// parsed for every tensor of every rank, and a regexp was a seventh of a tiny plan's run.)
func validAxisName(s string) bool {
	for i, c := range s {
		lower, digit := c >= 'a' && c <= 'z', c >= '0' && c <= '9'
		if !(lower || i > 0 && (digit || c == '_')) {
			return false
		}
	}
	return s != ""
}

// ParsePlacement parses the placement grammar of docs/trace-format.md:
//
//	placement := "" | item ("," item)*
//	item      := axis "=" spec
//	spec      := "replicate" | "stage" | "partial" ["(" op ")"]
//	           | "shard(" dim [",block=" n] ")" | "shard(" dim ",segments=" n (":" n)* ")"
//	op        := "sum" | "avg" | "max" | "min"
//
// The result is shared with other callers parsing the same string (parsed placements are
// cached): treat it as read-only.
func ParsePlacement(s string) (Placement, error) {
	if p, ok := placements.Load(s); ok {
		return p.(Placement), nil
	}
	p, err := parsePlacement(s)
	if err == nil && placementsCached.Add(1) <= maxCachedPlacements {
		placements.Store(s, p)
	}
	return p, err
}

// placements caches ParsePlacement's results: every tensor of every rank file names its
// placement, and a trace uses a handful of distinct ones. The cache holds at most
// maxCachedPlacements strings, so odd inputs cannot grow it without bound.
var (
	placements       sync.Map // string → Placement
	placementsCached atomic.Int64
)

const maxCachedPlacements = 1 << 12

func parsePlacement(s string) (Placement, error) {
	s = strings.ReplaceAll(s, " ", "")
	if s == "" {
		return nil, nil
	}
	var p Placement
	seen := map[string]bool{}
	for _, item := range splitItems(s) {
		axis, spec, ok := strings.Cut(item, "=")
		if !ok || !validAxisName(axis) {
			return nil, fmt.Errorf("placement %q: item %q is not axis=spec", s, item)
		}
		if seen[axis] {
			return nil, fmt.Errorf("placement %q: axis %q given twice", s, axis)
		}
		seen[axis] = true
		ap, err := parseSpec(axis, spec)
		if err != nil {
			return nil, fmt.Errorf("placement %q: %w", s, err)
		}
		p = append(p, ap)
	}
	if err := p.checkReductions(); err != nil {
		return nil, err
	}
	return p, nil
}

// splitItems splits on commas outside parentheses.
func splitItems(s string) []string {
	var out []string
	depth, start := 0, 0
	for i, c := range s {
		switch c {
		case '(':
			depth++
		case ')':
			depth--
		case ',':
			if depth == 0 {
				out = append(out, s[start:i])
				start = i + 1
			}
		}
	}
	return append(out, s[start:])
}

func parseSpec(axis, spec string) (AxisPlace, error) {
	switch spec {
	case "replicate":
		return AxisPlace{Axis: axis, Kind: Replicate}, nil
	case "partial":
		return AxisPlace{Axis: axis, Kind: Partial}, nil
	case "stage":
		return AxisPlace{Axis: axis, Kind: Stage}, nil
	}
	if op, ok := strings.CutPrefix(spec, "partial("); ok {
		for o, name := range opNames {
			if op == name+")" {
				return AxisPlace{Axis: axis, Kind: Partial, Op: PartialOp(o)}, nil
			}
		}
		return AxisPlace{}, fmt.Errorf("axis %s: unknown reduction in %q (want partial(sum), partial(avg), partial(max) or partial(min))", axis, spec)
	}
	ap, ok := parseShard(spec)
	if !ok {
		return AxisPlace{}, fmt.Errorf("axis %s: unknown spec %q (want replicate, partial, partial(op), stage, shard(d), shard(d,block=n) or shard(d,segments=n[:n…]))", axis, spec)
	}
	if ap.Dim > 64 || ap.Block < 0 {
		return AxisPlace{}, fmt.Errorf("axis %s: bad shard spec %q", axis, spec)
	}
	ap.Axis = axis
	return ap, nil
}

// parseShard reads "shard(d)", "shard(d,block=n)" or "shard(d,segments=a[:b…])". A zero block,
// a zero or empty segment, or more than maxSegments segments make Block -1 (refused).
func parseShard(spec string) (AxisPlace, bool) {
	inner, found := strings.CutPrefix(spec, "shard(")
	inner, ok := strings.CutSuffix(inner, ")")
	if !found || !ok {
		return AxisPlace{}, false
	}
	d, opt, hasOpt := strings.Cut(inner, ",")
	dim, ok := decimal(d)
	if !ok {
		return AxisPlace{}, false
	}
	ap := AxisPlace{Kind: Shard, Dim: dim}
	if !hasOpt {
		return ap, true
	}
	if b, isBlock := strings.CutPrefix(opt, "block="); isBlock {
		if ap.Block, ok = decimal(b); !ok {
			return AxisPlace{}, false
		}
		if ap.Block == 0 {
			ap.Block = -1
		}
		return ap, true
	}
	segs, isSeg := strings.CutPrefix(opt, "segments=")
	if !isSeg {
		return AxisPlace{}, false
	}
	for _, f := range strings.Split(segs, ":") {
		n, ok := decimal(f)
		if !ok {
			return AxisPlace{}, false
		}
		if n == 0 || len(ap.Segments) == maxSegments {
			ap.Block = -1
		}
		ap.Segments = append(ap.Segments, n)
	}
	return ap, true
}

// decimal parses a non-empty string of ASCII digits (no sign, no spaces) below 2^31.
func decimal(s string) (int, bool) {
	if s == "" || len(s) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func (a AxisPlace) spec() string {
	switch a.Kind {
	case Replicate:
		return "replicate"
	case Partial:
		if a.Op == OpSum {
			return "partial"
		}
		return "partial(" + a.Op.String() + ")"
	case Stage:
		return "stage"
	case Shard:
		switch {
		case a.Block > 0:
			return fmt.Sprintf("shard(%d,block=%d)", a.Dim, a.Block)
		case len(a.Segments) > 0:
			segs := make([]string, len(a.Segments))
			for i, n := range a.Segments {
				segs[i] = fmt.Sprint(n)
			}
			return fmt.Sprintf("shard(%d,segments=%s)", a.Dim, strings.Join(segs, ":"))
		}
		return fmt.Sprintf("shard(%d)", a.Dim)
	}
	return "?"
}

func (a AxisPlace) String() string { return a.Axis + "=" + a.spec() }

// checkReductions refuses a max or min partial axis combined with any other partial axis: the
// operands of a maximum cannot be told apart from summands split further.
func (p Placement) checkReductions() error {
	var partial []AxisPlace
	for _, a := range p {
		if a.Kind == Partial {
			partial = append(partial, a)
		}
	}
	for _, a := range partial {
		if !a.Op.Linear() && len(partial) > 1 {
			return fmt.Errorf("placement %q combines %s with another partial axis (a max or min reduction must be the only one)", p, a)
		}
	}
	return nil
}

// String prints p in the grammar ParsePlacement reads.
func (p Placement) String() string {
	items := make([]string, len(p))
	for i, a := range p {
		items[i] = a.String()
	}
	return strings.Join(items, ",")
}

// On returns the placement along axis (Replicate when the axis is not listed).
func (p Placement) On(axis string) AxisPlace {
	for _, a := range p {
		if a.Axis == axis {
			return a
		}
	}
	return AxisPlace{Axis: axis, Kind: Replicate}
}

// Range is the half-open range of the sharded dim (of global size n) that coordinate i of
// parts really holds, and the padded length of that shard (its rows past hi-lo are padding).
func (a AxisPlace) Range(n, parts, i int) (lo, hi, padded int) {
	block := a.Block
	if block == 0 {
		block = (n + parts - 1) / parts
	}
	lo, hi = min(i*block, n), min((i+1)*block, n)
	return lo, hi, block
}

// Span is a half-open run [Lo, Hi) of one dim of the global tensor.
type Span struct{ Lo, Hi int }

// Len is the number of rows in the span.
func (s Span) Len() int { return s.Hi - s.Lo }

// Spans narrows a shard's region along its dim to what coordinate i of parts holds. region
// lists the global runs whose concatenation the outer splits left this coordinate (one run
// [0, n) when a is the outermost split of its dim); the result lists the runs of coordinate i
// in the order its local tensor stores them. padded is the row count a stored shard may be
// padded to (Block), or -1. An error says how segments fail to fit the region.
func (a AxisPlace) Spans(region []Span, parts, i int) (out []Span, padded int, err error) {
	n := 0
	for _, s := range region {
		n += s.Len()
	}
	segs, err := a.segmentLengths(n)
	if err != nil {
		return nil, 0, err
	}
	if len(segs) == 1 {
		lo, hi, pad := a.Range(n, parts, i)
		return emptyAt(region, lo, cutSpans(region, lo, hi, nil)), pad, nil
	}
	off := 0
	for _, m := range segs {
		c := (m + parts - 1) / parts
		out = cutSpans(region, off+min(i*c, m), off+min((i+1)*c, m), out)
		off += m
	}
	return emptyAt(region, min(i*((segs[0]+parts-1)/parts), segs[0]), out), -1, nil
}

// emptyAt returns out, or, when it holds no rows, one empty run at row v of region's
// concatenation (where the coordinate's rows would start).
func emptyAt(region []Span, v int, out []Span) []Span {
	if len(out) > 0 {
		return out
	}
	for _, s := range region {
		if v <= s.Len() {
			return []Span{{s.Lo + v, s.Lo + v}}
		}
		v -= s.Len()
	}
	return []Span{{0, 0}}
}

// segmentLengths is the lengths of a's segments of a dim of n rows.
func (a AxisPlace) segmentLengths(n int) ([]int, error) {
	switch len(a.Segments) {
	case 0:
		return []int{n}, nil
	case 1: // k segments of ceil(n/k) rows, the last ones short (torch.chunk, as DTensor's _StridedShard)
		k := a.Segments[0]
		segs := make([]int, k)
		for j := range segs {
			lo, hi, _ := AxisPlace{}.Range(n, k, j)
			segs[j] = hi - lo
		}
		return segs, nil
	}
	total := 0
	for _, m := range a.Segments {
		total += m
	}
	if total != n {
		return nil, fmt.Errorf("%s: the segments add up to %d rows, but the dim has %d here", a, total, n)
	}
	return a.Segments, nil
}

// cutSpans appends to out the runs holding rows [lo, hi) of region's concatenation.
func cutSpans(region []Span, lo, hi int, out []Span) []Span {
	off := 0
	for _, s := range region {
		a, b := max(lo, off), min(hi, off+s.Len())
		switch {
		case a >= b:
		case len(out) > 0 && out[len(out)-1].Hi == s.Lo+a-off: // adjacent: one run
			out[len(out)-1].Hi = s.Lo + b - off
		default:
			out = append(out, Span{s.Lo + a - off, s.Lo + b - off})
		}
		off += s.Len()
	}
	return out
}

// Equal reports whether p and q are the same placement (what comparing their String forms
// says, without printing them).
func (p Placement) Equal(q Placement) bool {
	return slices.EqualFunc(p, q, func(a, b AxisPlace) bool {
		return a.Axis == b.Axis && a.Kind == b.Kind && a.Dim == b.Dim && a.Block == b.Block && a.Op == b.Op && slices.Equal(a.Segments, b.Segments)
	})
}
