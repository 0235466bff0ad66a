package reports

import (
	"fmt"
	"io"
	"strings"

	"github.com/spcheck/spcheck/verify"
)

// Markdown renders r for a PR comment or $GITHUB_STEP_SUMMARY.
func Markdown(w io.Writer, r *verify.Report, o Options) error {
	p := &printer{w: w}
	p.line("## spcheck compare: %s", mdEscape(headline(r)))
	p.line("")
	for _, s := range r.Sentences() {
		p.line("**%s**  ", mdEscape(s))
	}
	if len(r.Sentences()) > 0 {
		p.line("")
	}
	p.line("- reference: %s", mdCode(traceLine(r.Ref)))
	p.line("- candidate: %s", mdCode(traceLine(r.Cand)))
	if len(r.Tol) > 0 {
		p.line("- tolerance overrides: `%s`", r.Tol)
	}
	for _, l := range ruleLines(r) {
		p.line("- %s", mdEscape(l))
	}
	if first := r.First(); len(first) > 0 {
		p.line("")
		for _, res := range first {
			p.line("**First divergence:** %s  ", mdEscape(firstLine(res)))
			p.line("%s", mdEscape(detailLine(res)))
			for _, s := range append(signatureLines(res), replicaLines(res)...) {
				p.line("- %s", mdEscape(s))
			}
		}
		if n := r.Consequences(); n > 0 {
			p.line("")
			p.line("%s from it (consequences).", followWords(n))
		}
	}
	p.line("")
	shown, hidden := listed(r, o)
	if len(shown) > 0 {
		mdRow(p, "order", "name", "kind", "verdict", "max abs", "max rel", "outside", "×tol", "ref md5", "cand md5")
		mdRow(p, strings.Split(strings.Repeat("---,", 10), ",")[:10]...)
		for _, res := range shown {
			v := string(res.Verdict) + roleMark(res)
			if r.Failed(res) {
				v = "**" + v + "**"
			}
			mdRow(p, fmt.Sprint(res.Order), "`"+res.Name+"`", string(res.Kind), v, num(res.MaxAbs), num(res.MaxRel),
				outsideCell(res), num(res.TolUnits), "`"+short(res.RefMD5)+"`", "`"+short(res.CandMD5)+"`")
		}
	}
	if hidden > 0 {
		if len(shown) > 0 {
			p.line("")
		}
		p.line("%s", mdEscape(hiddenLine(r, shown, hidden)))
	}
	for _, res := range diagnosed(r) {
		d := res.Diagnosis
		p.line("")
		p.line("### Block diagnosis: `%s` (%s)", mdEscape(res.Name), res.Verdict)
		p.line("")
		p.line("%s", mdEscape(diagnosisTitle(d)))
		p.line("")
		hs := append([]string{"rank", "region", "outside"}, blockHeaders(d)...)
		mdRow(p, hs...)
		mdRow(p, strings.Split(strings.Repeat("---,", len(hs)), ",")[:len(hs)]...)
		for _, row := range d.Rows {
			cells := []string{rowLabel(row), row.Region, fmt.Sprintf("%d/%d", row.Outside, row.Numel)}
			for _, b := range row.Blocks {
				cells = append(cells, blockCell(b))
			}
			mdRow(p, cells...)
		}
		if l := lostLine(d); l != "" {
			p.line("")
			p.line("%s", mdEscape(l))
		}
		p.line("")
		for _, f := range d.Findings {
			p.line("- %s", mdEscape(f))
		}
	}
	if r.Undiagnosed > 0 {
		p.line("")
		p.line("%d later failures have no block diagnosis: they follow from the ones above.", r.Undiagnosed)
	}
	if h := fingerprintHeader(r); h != "" {
		p.line("")
		p.line("%s", mdEscape(h))
	}
	if rd := redumpLines(r); len(rd) > 0 {
		p.line("")
		p.line("%s", mdEscape(rd[0]))
		p.line("")
		p.line("```")
		for _, s := range rd[1:] {
			p.line("%s", strings.TrimSpace(s))
		}
		p.line("```")
	}
	if !r.Verified() {
		if repro := r.Reproduce(); len(repro) > 0 {
			p.line("")
			p.line("Reproduce:")
			p.line("")
			p.line("```")
			for _, s := range repro {
				p.line("%s", s)
			}
			p.line("```")
		}
	}
	p.line("")
	p.line("<sub>%s</sub>", mdEscape(versionLine()))
	return p.err
}

// mdRow writes one table row, escaping the cells.
func mdRow(p *printer, cells ...string) {
	for i, c := range cells {
		cells[i] = mdEscape(c)
	}
	p.line("| %s |", strings.Join(cells, " | "))
}

// mdEscape makes s safe inside a Markdown table cell or line: pipes are escaped and newlines
// folded, so a tensor name or value can never break the table.
func mdEscape(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\r", " ")
	return strings.ReplaceAll(s, "\n", " ")
}

// mdCode wraps s in a code span that its own backticks cannot close.
func mdCode(s string) string {
	fence := "`"
	for strings.Contains(s, fence) {
		fence += "`"
	}
	return fence + " " + s + " " + fence
}
