package reports

import (
	"fmt"
	"io"
	"strings"

	"github.com/spcheck/spcheck/verify"
)

// Text renders r for a terminal.
func Text(w io.Writer, r *verify.Report, o Options) error {
	p := &printer{w: w}
	p.line("spcheck compare: %s", headline(r))
	for _, s := range r.Sentences() {
		p.line("%s", s)
	}
	p.line("reference: %s", traceLine(r.Ref))
	p.line("candidate: %s", traceLine(r.Cand))
	if len(r.Tol) > 0 {
		p.line("tolerance overrides: %s", r.Tol)
	}
	if first := r.First(); len(first) > 0 {
		p.line("")
		for _, res := range first {
			p.line("first divergence: %s", firstLine(res))
			p.line("  %s", detailLine(res))
			for _, s := range append(signatureLines(res), replicaLines(res)...) {
				p.line("  %s", s)
			}
		}
		if n := r.Consequences(); n > 0 {
			p.line("  %s from it (consequences)", followWords(n))
		}
	}
	p.line("")
	shown, hidden := listed(r, o)
	t := newTable(w)
	t.Header("order", "name", "kind", "verdict", "max abs", "max rel", "outside", "×tol", "ref md5", "cand md5")
	for _, res := range shown {
		t.Append(fmt.Sprint(res.Order), res.Name, string(res.Kind), string(res.Verdict)+roleMark(res),
			num(res.MaxAbs), num(res.MaxRel), fmt.Sprintf("%d/%d", res.Outside, res.Numel), num(res.TolUnits),
			short(res.RefMD5), short(res.CandMD5))
	}
	if err := t.Render(); err != nil {
		return err
	}
	if hidden > 0 {
		p.line("(%d identical tensors not listed; --all lists them)", hidden)
	}
	for _, res := range diagnosed(r) {
		if err := textDiagnosis(p, w, res, o); err != nil {
			return err
		}
	}
	if r.Undiagnosed > 0 {
		p.line("\n(%s no block diagnosis: they follow from the ones above)", verify.Plural(r.Undiagnosed, "later failure")+" ha"+map[bool]string{true: "s", false: "ve"}[r.Undiagnosed == 1])
	}
	if !r.Verified() {
		if repro := r.Reproduce(); len(repro) > 0 {
			p.line("\nreproduce:")
			for _, s := range repro {
				p.line("  %s", s)
			}
		}
	}
	return p.err
}

func textDiagnosis(p *printer, w io.Writer, res *verify.Result, o Options) error {
	d := res.Diagnosis
	p.line("\nblock diagnosis: %s (%s) — %s", res.Name, res.Verdict, diagnosisTitle(d))
	t := newTable(w)
	t.Header(append([]string{"rank", "region", "outside"}, blockHeaders(d)...))
	for _, row := range d.Rows {
		cells := []string{rowLabel(row), row.Region, fmt.Sprintf("%d/%d", row.Outside, row.Numel)}
		for _, b := range row.Blocks {
			cells = append(cells, blockCell(b))
		}
		t.Append(cells)
	}
	if err := t.Render(); err != nil {
		return err
	}
	if l := lostLine(d); l != "" {
		p.line("%s", l)
	}
	for _, f := range d.Findings {
		p.line("- %s", f)
	}
	if o.Seed001 {
		seed001(p, res)
	}
	return nil
}

// printer writes lines and keeps the first error.
type printer struct {
	w   io.Writer
	err error
}

func (p *printer) line(format string, args ...any) {
	if p.err != nil {
		return
	}
	_, p.err = fmt.Fprintf(p.w, format+"\n", args...)
}

// seed001 renders a chunk-level diagnosis where all receivers hold the same data in the layout of
// PaddleFleet#589: the gathered tensor with chunks in the PR discussion's (reversed) order, the
// lost chunks, and each rank's correct value under its (swapped) TP label. NCCL's all-gather
// (Paddle process_group_nccl.cc AllGather) puts chunks in group-rank order and the P2P peer of TP t
// is TP t, so both differ from that table; the values are the same.
func seed001(p *printer, res *verify.Result) {
	d := res.Diagnosis
	if d.Level != verify.LevelChunk || res.Signature == nil || res.Signature.Kind != verify.SigIdenticalReceivers {
		return // the layout only describes receivers that all hold one gathered tensor
	}
	chunks := make([]string, len(d.Rows[0].Blocks))
	for j, b := range d.Rows[0].Blocks {
		chunks[len(chunks)-1-j] = values(b.Actual, ",")
	}
	p.line("seed-001 layout:")
	p.line("allgather 后接收端:")
	p.line("  [%s]", strings.Join(chunks, ", "))
	lost := make([]string, len(d.Lost))
	for i, l := range d.Lost {
		lost[i] = "[" + values(l.Values, ",") + "]"
	}
	p.line("  丢失: %s", strings.Join(lost, " "))
	p.line("正确值应该是:")
	n := len(d.Rows)
	for i := range d.Rows {
		var vals []string
		for _, b := range d.Rows[n-1-i].Blocks {
			vals = append(vals, values(b.Expected, ","))
		}
		p.line("  TP%d: [%s]", i, strings.Join(vals, ","))
	}
}
