package reports

import (
	"fmt"
	"io"
	"strings"

	"github.com/spcheck/spcheck/verify"
)

// Summary writes what a terminal or a CI log must show whatever format the full report is
// written in (spcheck compare --out): the verdict line, each root of the divergence with its
// one-line diagnosis, how many failures follow from them, and the commands that reproduce it.
func Summary(w io.Writer, r *verify.Report) error {
	p := newText(w)
	p.line("spcheck compare: %s", headline(r))
	for _, s := range r.Sentences() {
		p.line("%s", s)
	}
	for _, l := range ruleLines(r) {
		p.line("%s", l)
	}
	rootLines(p, r)
	if !r.Verified() {
		if repro := r.Reproduce(); len(repro) > 0 {
			p.line("reproduce:")
			for _, s := range repro {
				p.line("  %s", s)
			}
		}
	}
	return p.err
}

// rootLines prints each root of the divergence (the first divergence), its numbers and its
// one-line diagnosis, then the count of consequences.
func rootLines(p *printer, r *verify.Report) {
	for _, res := range r.First() {
		p.line("first divergence: %s", firstLine(res))
		p.line("  %s", detailLine(res))
		for _, s := range append(append(signatureLines(res), replicaLines(res)...), fingerprintEvidence(res)...) {
			p.line("  %s", s)
		}
	}
	if n := r.Consequences(); n > 0 {
		p.line("  %s from it (consequences)", followWords(n))
	}
}

// oneLine is a failing tensor's one-line diagnosis: its explanation (without the name) when it
// was diagnosed, else its signature, else its numbers.
func oneLine(res *verify.Result) string {
	if x := res.Explanation; x != nil {
		return strings.TrimPrefix(x.Sentence, res.Name+": ")
	}
	if res.Signature != nil {
		return res.Signature.String()
	}
	return detailLine(res)
}

// passSummary is the line a passing report prints instead of its tensor table: how many
// tensors, and the one nearest its tolerance.
func passSummary(r *verify.Report) string {
	worst := -1.0
	name := ""
	for _, res := range r.Results {
		if res.TolUnits > worst {
			worst, name = res.TolUnits, res.Name
		}
	}
	if name == "" {
		return "no tensors compared"
	}
	return fmt.Sprintf("every tensor within tolerance; nearest to it: %s at %s of its tolerance (--all lists every tensor)", name, pct(worst))
}

// pct prints a fraction of the tolerance as people write it: "0.0016%", "37%".
func pct(x float64) string {
	return num(100*x) + "%"
}
