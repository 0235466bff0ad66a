package verify

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/spcheck/spcheck/trace"
)

// maxRationalDenom is the largest denominator a factor is stated exactly with (×9/7, ×3/64);
// past it a factor is a measured number.
const maxRationalDenom = 64

// minMeasuredNumel is the fewest elements a piece needs for a measured (not simple rational)
// factor to mean anything: any one value is some multiple of any other.
const minMeasuredNumel = 4

// fitFactor fits a = c·e by least squares and reports c when a is c·e within tolerance, with its
// rational form (q = 0: none).
func fitFactor(a, e []float64, rtol, floor float64) (c float64, p, q int64, ok bool) {
	var ae, ee, aa float64
	for i, x := range e {
		if !isFinite(x) || !isFinite(a[i]) {
			return 0, 0, 0, false
		}
		ae += a[i] * x
		ee += x * x
		aa += a[i] * a[i]
	}
	if ee == 0 || aa == 0 {
		return 0, 0, 0, false
	}
	c = ae / ee
	var res float64
	for i, x := range e {
		d := a[i] - c*x
		res += d * d
	}
	resid := math.Sqrt(res / aa)
	p, q = rational(c, max(8*resid, 1e-12))
	if q != 0 {
		c = float64(p) / float64(q)
	} else if len(a) < minMeasuredNumel {
		return 0, 0, 0, false
	}
	for i, x := range e {
		if math.Abs(a[i]-c*x) > rtol*(math.Abs(c*x)+floor*math.Abs(c)) {
			return 0, 0, 0, false
		}
	}
	return c, p, q, true
}

// rational is the simplest p/q (q ≤ maxRationalDenom) within rel·|c| of c, from the continued
// fraction's convergents; q = 0 when there is none.
func rational(c, rel float64) (int64, int64) {
	if c == 0 || !isFinite(c) {
		return 0, 0
	}
	x := math.Abs(c)
	var h0, h1, k0, k1 int64 = 0, 1, 1, 0 // convergents h/k
	r := x
	for range 32 {
		a := math.Floor(r)
		if a > 1<<40 {
			break
		}
		h0, h1 = h1, int64(a)*h1+h0
		k0, k1 = k1, int64(a)*k1+k0
		if k1 > maxRationalDenom {
			break
		}
		if math.Abs(x-float64(h1)/float64(k1)) <= rel*x {
			if c < 0 {
				return -h1, k1
			}
			return h1, k1
		}
		if f := r - a; f > 0 {
			r = 1 / f
		} else {
			break
		}
	}
	return 0, 0
}

// formatFactor prints ×2, ×9/7, ×-1/2, or a measured ×0.73125.
func formatFactor(c float64, p, q int64) string {
	switch {
	case q == 1:
		return fmt.Sprintf("×%d", p)
	case q > 1:
		return fmt.Sprintf("×%d/%d", p, q)
	}
	return fmt.Sprintf("×%.6g", c)
}

// scaled: every wrong piece is a multiple of its reference (one factor, or one per piece or
// micro-batch), or failing that every sample (dim 0) is. A factor within PrecisionFactor of 1
// is precision, not a scale.
func (e *explainer) scaled(x *Explanation) bool {
	fs, ok := e.rowFactors()
	if !ok {
		if fs, ok = e.sampleFactors(); !ok {
			return false
		}
	}
	x.Factors = fs
	var wrong []Factor
	for _, f := range fs {
		if f.Scale != 1 {
			wrong = append(wrong, f)
		}
	}
	if len(wrong) == 0 {
		return false
	}
	common := true
	for _, f := range wrong[1:] {
		common = common && f.P == wrong[0].P && f.Q == wrong[0].Q && (f.Q != 0 || f.Scale == wrong[0].Scale)
	}
	near := true
	for _, f := range wrong {
		near = near && math.Abs(f.Scale-1) <= PrecisionFactor
	}
	if near {
		x.Mechanism = MechPrecision
		x.body = fmt.Sprintf("slightly off (precision), not wrong: %s its reference", factorList(wrong))
		return true
	}
	x.Mechanism = MechScaled
	if common {
		x.Factors = []Factor{wrong[0]}
		if len(wrong) == len(fs) {
			x.body = fmt.Sprintf("every piece is %s{q} its reference", wrong[0])
		} else {
			ats := make([]string, len(wrong))
			for i, f := range wrong {
				ats[i] = f.At
			}
			x.body = fmt.Sprintf("%s hold %s{q} their reference, the other pieces are right", strings.Join(ats, ", "), wrong[0])
			if len(wrong) == 1 {
				x.body = fmt.Sprintf("%s's piece is %s{q} its reference, the other pieces are right", ats[0], wrong[0])
			}
		}
		return true
	}
	what := "piece"
	if strings.HasPrefix(fs[0].At, "mb") {
		what = "micro-batch"
	} else if strings.HasPrefix(fs[0].At, "b") {
		what = "sample"
	}
	x.body = fmt.Sprintf("scaled per %s: %s", what, factorList(fs))
	return true
}

// factorList is "mb0 ×9/7, mb1 ×9/2".
func factorList(fs []Factor) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = f.At + " " + f.String()
	}
	return strings.Join(s, ", ")
}

// rowFactors fits a factor to every piece (1 for a right one); pieces at one micro-batch
// coordinate share it when the factors differ by micro-batch.
func (e *explainer) rowFactors() ([]Factor, bool) {
	var fs []Factor
	byMB := map[int]Factor{}
	mbOK := true
	for _, r := range e.rows {
		f := Factor{At: rankLabel(r.Rank), Scale: 1, P: 1, Q: 1}
		if !r.OK() {
			c, p, q, ok := fitFactor(r.actual, r.expected, e.rtol, e.floor)
			if !ok {
				return nil, false
			}
			f.Scale, f.P, f.Q = c, p, q
		}
		fs = append(fs, f)
		mb, has := r.Coord.Of("mb")
		if !has {
			mbOK = false
			continue
		}
		if g, seen := byMB[mb]; seen && (g.Scale != f.Scale) {
			mbOK = false
		}
		byMB[mb] = f
	}
	if mbOK && len(byMB) > 1 {
		keys := make([]int, 0, len(byMB))
		for k := range byMB {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var out []Factor
		for _, k := range keys {
			f := byMB[k]
			f.At = fmt.Sprintf("mb%d", k)
			out = append(out, f)
		}
		return out, true
	}
	return fs, true
}

func rankLabel(rank int) string {
	if rank < 0 {
		return "the sum"
	}
	return fmt.Sprintf("rank %d", rank)
}

// sampleFactors fits a factor to every slice of dim 0 of the whole tensor (a sample of a
// batch, or a row of a matrix): "b0 ×9/7, b1 ×9/2".
func (e *explainer) sampleFactors() ([]Factor, bool) {
	if len(e.shape) < 2 || e.shape[0] < 2 {
		return nil, false
	}
	n := len(e.ref) / e.shape[0]
	var fs []Factor
	distinct := map[float64]bool{}
	for b := 0; b < e.shape[0]; b++ {
		a, r := e.cand[b*n:(b+1)*n], e.ref[b*n:(b+1)*n]
		f := Factor{At: fmt.Sprintf("b%d", b), Scale: 1, P: 1, Q: 1}
		if !closeValues(a, r, e.rtol, e.floor) {
			c, p, q, ok := fitFactor(a, r, e.rtol, e.floor)
			if !ok {
				return nil, false
			}
			f.Scale, f.P, f.Q = c, p, q
		}
		distinct[f.Scale] = true
		fs = append(fs, f)
	}
	return fs, len(distinct) > 1
}

// quantity is a plan or mesh quantity a factor may equal.
type quantity struct {
	name string
	v    int
}

// synonyms name one quantity two ways: the mesh's virtual micro-batch axis and the plan key.
var synonyms = map[string]string{"mb": "microbatches"}

// reductionQuantities scale gradients through a reduction or an average over a group;
// lossQuantities through the loss's normalisation.
var (
	reductionQuantities = []string{"tp", "dp", "pp", "cp", "ep", "sp"}
	lossQuantities      = []string{"microbatches", "mtp"}
)

// quantities are the candidate's mesh axis sizes and plan quantities, synonyms merged.
func (c *comparer) quantities() []quantity {
	if len(c.cl.tr.Files) == 0 {
		return nil
	}
	return meshQuantities(c.cl.tr.Files[0].Meta.Mesh, c.cand.Plan)
}

// meshQuantities are a mesh's axis sizes and a plan string's planQuantities greater than 1, each
// once, synonyms merged.
func meshQuantities(m trace.Mesh, planStr string) []quantity {
	var qs []quantity
	add := func(name string, v int) {
		if s, ok := synonyms[name]; ok {
			name = s
		}
		if v <= 1 || slices.ContainsFunc(qs, func(q quantity) bool { return q.name == name }) {
			return
		}
		qs = append(qs, quantity{name, v})
	}
	for i, a := range m.Axes {
		add(a, m.Shape[i])
	}
	for _, key := range planQuantities {
		if v, ok := planInt(planStr, key); ok {
			add(key, v)
		}
	}
	return qs
}

// nameFactors names every common scale factor after the one quantity it equals; where several
// quantities equal it, the kinds of the tensors scaled by it decide (only parameter gradients:
// a reduction quantity; a loss or activation gradient too: a loss-normalisation quantity), and
// it stays unnamed when that leaves more than one.
func nameFactors(rep *Report, qs []quantity) {
	kinds := map[float64]map[trace.Kind]bool{}
	for _, res := range rep.Results {
		if x := res.Explanation; x != nil && x.Mechanism == MechScaled && len(x.Factors) == 1 {
			c := x.Factors[0].Scale
			if kinds[c] == nil {
				kinds[c] = map[trace.Kind]bool{}
			}
			kinds[c][res.Kind] = true
		}
	}
	for _, res := range rep.Results {
		x := res.Explanation
		if x == nil || !strings.Contains(x.body, "{q}") {
			continue
		}
		q, why := "", ""
		if x.Mechanism == MechScaled && len(x.Factors) == 1 {
			q, why = nameFactor(x.Factors[0].Scale, qs, kinds[x.Factors[0].Scale])
		}
		x.Quantity = q
		tag := ""
		if q != "" {
			tag = " (" + q + ")"
		}
		x.body = strings.Replace(x.body, "{q}", tag, 1)
		if why != "" {
			x.body += ": " + why
		}
		x.render()
	}
}

// nameFactor is the quantity c equals ("tp", "1/microbatches") and what that scaling suggests.
func nameFactor(c float64, qs []quantity, kinds map[trace.Kind]bool) (string, string) {
	var cands []string
	for _, q := range qs {
		switch v := float64(q.v); {
		case c == v:
			cands = append(cands, q.name)
		case c*v == 1:
			cands = append(cands, "1/"+q.name)
		case c == -v:
			cands = append(cands, "-"+q.name)
		}
	}
	onlyGrads := len(kinds) > 0
	for k := range kinds {
		onlyGrads = onlyGrads && k == trace.ParamGrad
	}
	lossToo := kinds[trace.Loss] || kinds[trace.ActivationGrad]
	prefer := func(set []string) []string {
		var out []string
		for _, n := range cands {
			if slices.Contains(set, strings.TrimLeft(n, "1/-")) {
				out = append(out, n)
			}
		}
		return out
	}
	switch {
	case len(cands) > 1 && onlyGrads:
		cands = prefer(reductionQuantities)
	case len(cands) > 1 && lossToo:
		cands = prefer(lossQuantities)
	}
	if len(cands) != 1 {
		return "", ""
	}
	base := strings.TrimLeft(cands[0], "1/-")
	switch {
	case onlyGrads && slices.Contains(reductionQuantities, base) && strings.HasPrefix(cands[0], "1/"):
		return cands[0], "averaged over " + base + " where it should be summed"
	case onlyGrads && slices.Contains(reductionQuantities, base):
		return cands[0], "a gradient reduced over " + base + " once too often (or a collective's adjoint)"
	case lossToo && slices.Contains(lossQuantities, base):
		return cands[0], "the loss normalised by " + base + " wrongly"
	}
	return cands[0], ""
}
