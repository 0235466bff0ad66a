package verify

import (
	"math"

	"github.com/spcheck/spcheck/tensor"
)

// Metrics measure how far a candidate tensor is from the reference, element by element.
type Metrics struct {
	Numel     int
	MaxAbs    float64 // max |cand − ref| over pairs whose difference is finite
	MaxRel    float64 // max |cand − ref| / |ref| over pairs with ref ≠ 0
	RMSRel    float64 // normwise ‖cand − ref‖₂ / ‖ref‖₂
	Outside   int     // elements outside tolerance, non-finite disagreements included
	NonFinite int     // positions holding NaN/Inf on either side (agreeing or not)
	TolUnits  float64 // worst |cand − ref| / (rtol·(|ref| + rms(ref))); +Inf for non-finite
	Worst     int     // flat index of the worst element, -1 if none differs
	RefRMS    float64 // rms of the finite reference values
	Floor     float64 // the tolerance's absolute floor: max(RefRMS, the kind's floor)
	NormDev   float64 // normwise deviation ‖cand − ref‖₂ / ‖mag + Floor‖₂ (mag: |ref|, or the summands' scale): the per-element metric taken normwise
	NormTol   float64 // the normwise bound applied to NormDev (compareOne sets it)
	Lo, Hi    []int   // bounding box [Lo, Hi) of the elements outside tolerance; nil if none
}

// Pass reports whether every element is within tolerance.
func (m Metrics) Pass() bool { return m.Outside == 0 }

// decodeChunk is how many elements are decoded at a time: both sides' chunks stay in L1/L2.
const decodeChunk = 4096

// decodeInto decodes len(dst) elements of dtype d from b.
func decodeInto(d tensor.DType, b []byte, dst []float64) { tensor.DecodeInto(d, b, dst) }

// sumSquares is Σv² and the count over the finite values of a raw tensor.
func sumSquares(d tensor.DType, raw []byte, buf []float64) (sum float64, finite int) {
	n := len(raw) / d.Size()
	for at := 0; at < n; at += len(buf) {
		v := buf[:min(len(buf), n-at)]
		decodeInto(d, raw[at*d.Size():], v)
		// Four accumulators: with one, every element would wait out the add's latency. The
		// float64 conversions forbid fusing x*x+s into an FMA (GOAMD64=v3, arm64), so the
		// bits, and the golden reports, are the same on every architecture.
		var s0, s1, s2, s3 float64
		i := 0
		for ; i+4 <= len(v); i += 4 {
			s0 += float64(v[i] * v[i])
			s1 += float64(v[i+1] * v[i+1])
			s2 += float64(v[i+2] * v[i+2])
			s3 += float64(v[i+3] * v[i+3])
		}
		for ; i < len(v); i++ {
			s0 += float64(v[i] * v[i])
		}
		if c := s0 + s1 + s2 + s3; isFinite(c) {
			sum += c
			finite += len(v)
			continue
		}
		for _, x := range v { // a NaN or Inf in this chunk: leave it out
			if isFinite(x) {
				sum += float64(x * x)
				finite++
			}
		}
	}
	return sum, finite
}

// compareRaw measures cand against ref, both raw canonical bytes of a tensor of the given shape.
// scratch is reused between calls (grown as needed; nil allocates).
// kindFloor is a lower bound for the absolute floor (see KindFloorFraction); 0 for none.
// scale, when not nil, holds per element a magnitude the error may scale with instead of |ref|
// (the summands of a partial-sum tensor; see assembler.partialScale).
func compareRaw(rd tensor.DType, ref []byte, cd tensor.DType, cand []byte, shape []int, rtol, kindFloor float64, scale []float64, scratch *[]float64) Metrics {
	n := tensor.Numel(shape)
	chunkLen := min(decodeChunk, max(n, 1)) // tiny tensors get tiny scratch
	var buf []float64
	if scratch != nil {
		buf = *scratch
	}
	if len(buf) < 2*chunkLen {
		buf = make([]float64, 2*chunkLen)
		if scratch != nil {
			*scratch = buf
		}
	}
	rb, cb := buf[:chunkLen], buf[chunkLen:2*chunkLen]
	m := Metrics{Numel: n, Worst: -1}
	sumSqRef, finite := sumSquares(rd, ref, rb)
	if finite > 0 {
		m.RefRMS = math.Sqrt(sumSqRef / float64(finite))
	}
	m.Floor = max(m.RefRMS, kindFloor)
	var sumSqDiff, sumSqWeight float64
	var strides []int
	for at := 0; at < n; at += chunkLen {
		k := min(chunkLen, n-at)
		r, c := rb[:k], cb[:k]
		decodeInto(rd, ref[at*rd.Size():], r)
		decodeInto(cd, cand[at*cd.Size():], c)
		for i, rv := range r {
			if isFinite(rv) {
				w := math.Abs(rv)
				if scale != nil {
					w = max(w, scale[at+i])
				}
				w += m.Floor
				sumSqWeight += float64(w * w)
			}
			cv := c[i]
			d := cv - rv
			if d == 0 {
				continue
			}
			idx := at + i
			if math.IsNaN(d) || math.IsInf(d, 0) {
				if !isFinite(rv) || !isFinite(cv) { // on either side or both: a failure
					m.NonFinite++
				}
				m.outside(idx, math.Inf(1), shape, &strides)
				continue
			}
			ad, ar := math.Abs(d), math.Abs(rv)
			m.MaxAbs = max(m.MaxAbs, ad)
			if ad > m.MaxRel*ar && rv != 0 { // divide only when the ratio grows
				m.MaxRel = ad / ar
			}
			sumSqDiff += float64(ad * ad)
			mag := ar
			if scale != nil {
				mag = max(ar, scale[idx])
			}
			tol := rtol * (mag + m.Floor)
			if ad > tol {
				m.outside(idx, ad/tol, shape, &strides)
			} else if ad > m.TolUnits*tol {
				m.TolUnits, m.Worst = ad/tol, idx
			}
		}
	}
	switch {
	case sumSqRef > 0:
		m.RMSRel = math.Sqrt(sumSqDiff) / math.Sqrt(sumSqRef)
	case sumSqDiff > 0:
		m.RMSRel = math.Inf(1)
	}
	switch {
	case sumSqWeight > 0:
		m.NormDev = math.Sqrt(sumSqDiff) / math.Sqrt(sumSqWeight)
	case sumSqDiff > 0:
		m.NormDev = math.Inf(1)
	}
	return m
}

// outside records an element outside tolerance at flat index idx, units of tolerance off.
func (m *Metrics) outside(idx int, units float64, shape []int, strides *[]int) {
	m.Outside++
	if units > m.TolUnits || m.Worst < 0 {
		m.TolUnits, m.Worst = units, idx
	}
	if *strides == nil {
		*strides = tensor.Strides(shape)
	}
	if m.Lo == nil {
		m.Lo, m.Hi = make([]int, len(shape)), make([]int, len(shape))
		for d, s := range *strides {
			v := idx / s % shape[d]
			m.Lo[d], m.Hi[d] = v, v+1
		}
		return
	}
	for d, s := range *strides {
		v := idx / s % shape[d]
		m.Lo[d], m.Hi[d] = min(m.Lo[d], v), max(m.Hi[d], v+1)
	}
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// nonFiniteAgree: both NaN, or the same infinity.
func nonFiniteAgree(a, b float64) bool {
	if math.IsNaN(a) && math.IsNaN(b) {
		return true
	}
	return math.IsInf(a, 0) && a == b
}

// closeValues reports whether every element of a is within tolerance of b (the reference),
// with the absolute floor rtol·floor.
func closeValues(a, b []float64, rtol, floor float64) bool {
	for i, bv := range b {
		av := a[i]
		if av == bv || nonFiniteAgree(av, bv) {
			continue
		}
		if !(math.Abs(av-bv) <= rtol*(math.Abs(bv)+floor)) {
			return false
		}
	}
	return true
}
