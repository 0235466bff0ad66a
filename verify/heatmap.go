package verify

import (
	"math"
	"slices"

	"github.com/spcheck/spcheck/tensor"
)

// Heatmap bounds: a root tensor's element errors are pooled into at most HeatmapMax × HeatmapMax
// cells, so a report's size does not grow with the model.
const HeatmapMax = 64

// Histogram bins of log10(error in units of the tolerance): HistLo … HistHi, one decade each,
// the first and last open-ended; 0 is the tolerance.
const (
	HistLo = -8
	HistHi = 8
)

// Heatmap is a root tensor's error as a 2-D picture, for the HTML report: rows are the
// tensor's leading dims (every index but the last; one row for a vector), columns its last
// dim, each pooled into at most HeatmapMax cells. A cell holds the worst element of its block:
// its error in units of the tolerance (|cand − ref| / (rtol·(|ref| + floor)), +Inf where only one
// side is finite), and that element's reference and candidate values.
type Heatmap struct {
	Rows, Cols       int // cells
	RowLen, ColLen   int // elements along each axis before pooling
	Units, Ref, Cand []float64
	Hist             []int // HistHi − HistLo + 1 bins of log10(units) over every element; exact matches are left out
	Exact, Elements  int   // elements with no error at all; all elements
	// Shards is the same picture per candidate shard (the ranks holding one region of the
	// tensor), when it is split into 2 … MaxShardPanels regions; pooled into at most
	// ShardMax × ShardMax cells each.
	Shards []ShardHeat
}

// Shard panel bounds.
const (
	MaxShardPanels = 16
	ShardMax       = 32
)

// ShardHeat is one candidate shard's error: the region it holds (its bounding box), the
// ranks holding copies of it, and its elements' errors pooled like Heatmap.Units (rows: every
// index of the region but the last, columns: the last).
type ShardHeat struct {
	Ranks      []int
	Region     string
	Rows, Cols int
	Units      []float64
}

// heatmapOf pools a root tensor's assembled values (raw, in their dtypes) into its Heatmap;
// nil when the shapes differ or there is nothing to draw.
func heatmapOf(res *Result, refRaw, candRaw []byte) *Heatmap {
	ref := tensor.Decode(res.RefDType, refRaw, nil)
	cand := tensor.Decode(res.CandDType, candRaw, nil)
	if len(ref) == 0 || len(ref) != len(cand) {
		return nil
	}
	colLen := len(ref)
	if s := res.RefShape; len(s) >= 2 {
		colLen = s[len(s)-1]
	}
	if colLen == 0 {
		return nil
	}
	rowLen := len(ref) / colLen
	h := &Heatmap{RowLen: rowLen, ColLen: colLen, Rows: min(rowLen, HeatmapMax), Cols: min(colLen, HeatmapMax),
		Hist: make([]int, HistHi-HistLo+1), Elements: len(ref)}
	n := h.Rows * h.Cols
	h.Units, h.Ref, h.Cand = make([]float64, n), make([]float64, n), make([]float64, n)
	for i := range h.Units {
		h.Units[i] = -1
	}
	for i := range ref {
		u := elemUnits(ref[i], cand[i], res.RTol, res.Floor)
		switch {
		case u == 0:
			h.Exact++
		default:
			b := HistHi
			if !math.IsInf(u, 1) {
				b = min(max(int(math.Floor(math.Log10(u))), HistLo), HistHi)
			}
			h.Hist[b-HistLo]++
		}
		r, c := i/colLen, i%colLen
		cell := (r*h.Rows/rowLen)*h.Cols + c*h.Cols/colLen
		if u > h.Units[cell] {
			h.Units[cell], h.Ref[cell], h.Cand[cell] = u, ref[i], cand[i]
		}
	}
	if res.cand != nil {
		h.Shards = shardHeats(res, ref, cand)
	}
	return h
}

// shardHeats pools the element errors of each region of the candidate's layout (cells that
// differ only in partial-sum coordinates are one region); nil for an unsplit tensor or one
// split into more than MaxShardPanels regions.
func shardHeats(res *Result, ref, cand []float64) []ShardHeat {
	l := res.cand
	byPos := map[int]*ShardHeat{}
	var order []int
	var boxes [][2][]int
	for _, c := range l.cells {
		sh := byPos[c.pos]
		if sh == nil {
			sh = &ShardHeat{Region: regionString(c.lo, c.hi)}
			byPos[c.pos] = sh
			order = append(order, c.pos)
			boxes = append(boxes, [2][]int{c.lo, c.hi})
		}
		for _, p := range c.copies {
			if !slices.Contains(sh.Ranks, p.rank) {
				sh.Ranks = append(sh.Ranks, p.rank)
			}
		}
	}
	if len(order) < 2 || len(order) > MaxShardPanels || len(l.shape) == 0 {
		return nil
	}
	strides := tensor.Strides(l.shape)
	out := make([]ShardHeat, len(order))
	for k, pos := range order {
		sh := byPos[pos]
		slices.Sort(sh.Ranks)
		lo, hi := boxes[k][0], boxes[k][1]
		nd := len(lo)
		colLen := hi[nd-1] - lo[nd-1]
		total := 1
		for d := range lo {
			total *= hi[d] - lo[d]
		}
		if colLen <= 0 || total == 0 {
			out[k] = *sh
			continue
		}
		last := 0
		for d := range hi {
			last += (hi[d] - 1) * strides[d]
		}
		if last >= len(ref) {
			return nil // a region outside the compared values: draw no shards
		}
		rowLen := total / colLen
		sh.Rows, sh.Cols = min(rowLen, ShardMax), min(colLen, ShardMax)
		sh.Units = make([]float64, sh.Rows*sh.Cols)
		for i := range sh.Units {
			sh.Units[i] = -1
		}
		idx := slices.Clone(lo)
		for e := 0; e < total; e++ {
			flat := 0
			for d, x := range idx {
				flat += x * strides[d]
			}
			u := elemUnits(ref[flat], cand[flat], res.RTol, res.Floor)
			r, c := e/colLen, e%colLen
			cell := (r*sh.Rows/rowLen)*sh.Cols + c*sh.Cols/colLen
			sh.Units[cell] = max(sh.Units[cell], u)
			for d := nd - 1; d >= 0; d-- { // next index of the box, last dim fastest
				if idx[d]++; idx[d] < hi[d] {
					break
				}
				idx[d] = lo[d]
			}
		}
		out[k] = *sh
	}
	return out
}

// elemUnits is one element's error in units of its tolerance bound rtol·(|ref| + floor): 0
// for equal values (NaN equal to NaN included), +Inf where the two differ in finiteness or
// the bound is 0.
func elemUnits(ref, cand, rtol, floor float64) float64 {
	if ref == cand || math.IsNaN(ref) && math.IsNaN(cand) {
		return 0
	}
	d := math.Abs(cand - ref)
	bound := rtol * (math.Abs(ref) + floor)
	if math.IsNaN(d) || math.IsInf(d, 0) || bound == 0 {
		return math.Inf(1)
	}
	return d / bound
}
