// Package calibrate estimates the float64 noise floor of each logical tensor of an oracle
// reference by recomputing the same model under other valid reduction orders — the same plan
// split other ways (tensor-parallel degrees, sequence-parallel styles, pipeline stages, each of
// which sums in a different order) — and measuring how far each recomputation lands from the
// oracle. A candidate is then held to a multiple of that floor instead of a fixed constant
// (`spcheck compare --tol calibrate`), which catches smaller corruptions than RTolF64 would.
//
// The measured floor is float64 reordering noise. Candidates stored or computed in lower
// precision are dominated by their own rounding, so their dtypes keep verify's constants.
package calibrate
