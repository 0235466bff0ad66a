package reports

import (
	"fmt"
	"strings"

	"github.com/spcheck/spcheck/verify"
)

// outsideCell is the "outside" column: elements outside tolerance of all, or of the sample for
// a tensor compared on fingerprints.
func outsideCell(res *verify.Result) string {
	if fc := res.Fingerprint; fc != nil && res.Verdict != verify.Identical {
		return fmt.Sprintf("%d/%d sampled", res.Outside, fc.Samples)
	}
	return fmt.Sprintf("%d/%d", res.Outside, res.Numel)
}

// outsideWords is outsideCell in a sentence.
func outsideWords(res *verify.Result) string {
	if fc := res.Fingerprint; fc != nil {
		return fmt.Sprintf("%d of %d sampled elements (of %d)", res.Outside, fc.Samples, res.Numel)
	}
	return fmt.Sprintf("%d of %d elements", res.Outside, res.Numel)
}

// fingerprintHeader says that some tensors were compared on fingerprints and what that can
// miss; "" when none was.
func fingerprintHeader(r *verify.Report) string {
	n := r.Fingerprinted()
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("compared on fingerprints: %d of %d tensors (%s)", n, len(r.Results), verify.FingerprintCaveat)
}

// fingerprintEvidence describes how a failing tensor was judged on fingerprints.
func fingerprintEvidence(res *verify.Result) []string {
	fc := res.Fingerprint
	if fc == nil || res.Verdict.Passed() {
		return nil
	}
	s := fmt.Sprintf("on fingerprints: normwise deviation %s× its bound from the sample, at least %s× from the norms and block sums",
		num(ratioOr0(fc.Estimate, res.NormTol)), num(ratioOr0(fc.Bound, res.NormTol)))
	out := []string{s}
	if len(fc.Blocks) > 0 {
		bs := make([]string, 0, len(fc.Blocks))
		for i, b := range fc.Blocks {
			if i == 8 {
				bs = append(bs, fmt.Sprintf("… %d more", len(fc.Blocks)-8))
				break
			}
			bs = append(bs, b.String())
		}
		out = append(out, "blocks that differ: "+strings.Join(bs, ", "))
	}
	return out
}

func ratioOr0(a, b float64) float64 {
	if b <= 0 {
		return 0
	}
	return a / b
}

// redumpLines are the targeted re-run that gives the first divergence its full diagnosis.
func redumpLines(r *verify.Report) []string {
	rd := r.Redump()
	if rd == nil {
		return nil
	}
	out := []string{fmt.Sprintf("targeted re-run: dump %s in full (the rest as fingerprints) for the block diagnosis:", strings.Join(rd.Names, ", "))}
	for _, c := range rd.Commands {
		out = append(out, "  "+c)
	}
	for _, n := range rd.Notes {
		out = append(out, "  "+n)
	}
	return out
}

type jFingerprint struct {
	RefFull  bool           `json:"reference_full"`
	CandFull bool           `json:"candidate_full"`
	Samples  int            `json:"samples"`
	Estimate jnum           `json:"norm_dev_estimate"`
	Bound    jnum           `json:"norm_dev_bound"`
	Blocks   []jSketchBlock `json:"blocks"`
	Ranks    []int          `json:"ranks"`
	Caveat   string         `json:"caveat"`
}

type jSketchBlock struct {
	Dim int `json:"dim"`
	Lo  int `json:"lo"`
	Hi  int `json:"hi"`
}

type jRedump struct {
	Names    []string `json:"names"`
	Commands []string `json:"commands"`
	Notes    []string `json:"notes"`
}

func jFingerprintOf(res *verify.Result) *jFingerprint {
	fc := res.Fingerprint
	if fc == nil {
		return nil
	}
	j := &jFingerprint{RefFull: fc.RefFull, CandFull: fc.CandFull, Samples: fc.Samples, Estimate: jnum(fc.Estimate),
		Bound: jnum(fc.Bound), Blocks: []jSketchBlock{}, Ranks: orEmptyInts(fc.Ranks), Caveat: verify.FingerprintCaveat}
	for _, b := range fc.Blocks {
		j.Blocks = append(j.Blocks, jSketchBlock{Dim: b.Dim, Lo: b.Lo, Hi: b.Hi})
	}
	return j
}

func jRedumpOf(r *verify.Report) *jRedump {
	rd := r.Redump()
	if rd == nil {
		return nil
	}
	return &jRedump{Names: rd.Names, Commands: rd.Commands, Notes: orEmpty(rd.Notes)}
}

func orEmptyInts(xs []int) []int {
	if xs == nil {
		return []int{}
	}
	return xs
}
