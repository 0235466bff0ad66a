package trace

import (
	"fmt"
	"strings"
)

// PlaceKind is how a tensor is laid out along one mesh axis.
type PlaceKind uint8

const (
	// Replicate: every coordinate of the axis holds the same full copy.
	Replicate PlaceKind = iota + 1
	// Shard: coordinate i holds block i of dim Dim (see AxisPlace.Range).
	Shard
	// Partial: coordinate i holds a summand; the logical tensor is the sum over the axis.
	Partial
	// Stage: only some coordinates hold the tensor (a pipeline stage's own tensors, or a
	// weight shared by the first and last stage); where held, copies must agree.
	Stage
)

// AxisPlace is the placement of a tensor along one named mesh axis.
type AxisPlace struct {
	Axis  string
	Kind  PlaceKind
	Dim   int // Shard only
	Block int // Shard only: rows per shard (0 = ceil(n/parts)); shards may be padded to Block
}

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
//	item      := axis "=" ("replicate" | "partial" | "stage" | "shard(" dim [",block=" n] ")")
func ParsePlacement(s string) (Placement, error) {
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
	dim, block, ok := parseShard(spec)
	if !ok {
		return AxisPlace{}, fmt.Errorf("axis %s: unknown spec %q (want replicate, partial, stage, shard(d) or shard(d,block=n))", axis, spec)
	}
	if dim > 64 || block == 0 {
		return AxisPlace{}, fmt.Errorf("axis %s: bad shard spec %q", axis, spec)
	}
	if block < 0 {
		block = 0
	}
	return AxisPlace{Axis: axis, Kind: Shard, Dim: dim, Block: block}, nil
}

// parseShard reads "shard(d)" or "shard(d,block=n)"; block is -1 when absent.
func parseShard(spec string) (dim, block int, ok bool) {
	inner, found := strings.CutPrefix(spec, "shard(")
	if inner, ok = strings.CutSuffix(inner, ")"); !found || !ok {
		return 0, 0, false
	}
	d, b, hasBlock := strings.Cut(inner, ",block=")
	if dim, ok = decimal(d); !ok {
		return 0, 0, false
	}
	if !hasBlock {
		return dim, -1, true
	}
	block, ok = decimal(b)
	return dim, block, ok
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
		return "partial"
	case Stage:
		return "stage"
	case Shard:
		if a.Block > 0 {
			return fmt.Sprintf("shard(%d,block=%d)", a.Dim, a.Block)
		}
		return fmt.Sprintf("shard(%d)", a.Dim)
	}
	return "?"
}

func (a AxisPlace) String() string { return a.Axis + "=" + a.spec() }

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
