package nntest

import (
	"fmt"
	"math"
)

// FDStep is the step h of the five-point central difference
// (8(f(x+h) − f(x−h)) − (f(x+2h) − f(x−2h)))/12h. Its truncation error is ~h⁴·|f⁽⁵⁾|/30 and its
// rounding error ~ε·|f|/h (ε = 2⁻⁵², f evaluated to a few ulps). The 8-wide test models have
// steep directions (third derivatives of the loss up to ~1e4 along one embedding element,
// because a single weight moves a whole row through several norms), so h is a compromise:
// at 1e-3 truncation reaches ~5e-6 relative, at 1e-4 rounding reaches ~3e-6 on the smallest
// gradients, at 3e-4 both stay below ~1e-6.
const FDStep = 3e-4

// FDRelTol is the largest accepted error of an analytic gradient against the differences,
// relative to the denominator below. Measured worst with FDStep: ~6e-9 over every nn kernel,
// ~7e-7 over every parameter and sampled activation of the oracle's test models; 1e-5 keeps a
// 10× margin while a wrong backward (a dropped term, a wrong sign or scale, a transposed
// index, even a 0.1% scale error) misses by 1e-3 or more.
const FDRelTol = 1e-5

// FDScaleFrac and FDAbsFloor set the denominator of the relative error of element i:
// max(|n_i|, FDScaleFrac·max_j|n_j|, FDAbsFloor). Elements much smaller than their tensor's
// largest are judged against a thousandth of it, and gradients below 1e-6 by their absolute
// error, so the absolute rounding noise of the differences (~1e-12 with FDStep on O(1)
// losses) cannot fail an element that is merely tiny.
const (
	FDScaleFrac = 1e-3
	FDAbsFloor  = 1e-6
)

// NumericGrad returns the five-point central-difference gradient of f with respect to x[idx] for each idx
// (all of x when idx is nil). x is perturbed in place and restored exactly.
func NumericGrad(f func() float64, x []float64, idx []int) []float64 {
	if idx == nil {
		idx = make([]int, len(x))
		for i := range idx {
			idx[i] = i
		}
	}
	g := make([]float64, len(idx))
	for n, i := range idx {
		orig := x[i]
		at := func(d float64) float64 { x[i] = orig + d; return f() }
		d1 := at(FDStep) - at(-FDStep)
		d2 := at(2*FDStep) - at(-2*FDStep)
		x[i] = orig
		g[n] = (8*d1 - d2) / (12 * FDStep)
	}
	return g
}

// Mismatch is the worst element of an analytic-vs-numeric comparison.
type Mismatch struct {
	Index             int     // position in the compared slices
	Analytic, Numeric float64 // the two values there
	RelErr            float64 // its relative error (see FDScaleFrac)
}

func (m Mismatch) String() string {
	return fmt.Sprintf("element %d: analytic %.12g, numeric %.12g, relative error %.3g", m.Index, m.Analytic, m.Numeric, m.RelErr)
}

// Worst compares analytic and numeric gradients and returns the element with the largest
// relative error.
func Worst(analytic, numeric []float64) Mismatch {
	if len(analytic) != len(numeric) {
		panic(fmt.Sprintf("nntest.Worst: %d analytic vs %d numeric values", len(analytic), len(numeric)))
	}
	scale := 0.0
	for _, v := range numeric {
		scale = math.Max(scale, math.Abs(v))
	}
	worst := Mismatch{Index: -1}
	for i := range analytic {
		den := math.Max(math.Max(math.Abs(numeric[i]), FDScaleFrac*scale), FDAbsFloor)
		e := math.Abs(analytic[i]-numeric[i]) / den
		if math.IsNaN(e) {
			e = math.Inf(1)
		}
		if e > worst.RelErr || worst.Index < 0 {
			worst = Mismatch{Index: i, Analytic: analytic[i], Numeric: numeric[i], RelErr: e}
		}
	}
	return worst
}

// Pick returns the entries of full at idx (all of full when idx is nil).
func Pick(full []float64, idx []int) []float64 {
	if idx == nil {
		return append([]float64{}, full...)
	}
	out := make([]float64, len(idx))
	for n, i := range idx {
		out[n] = full[i]
	}
	return out
}
