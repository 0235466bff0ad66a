package reports

import (
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/verify"
)

// Text renders r for a terminal.
func Text(w io.Writer, r *verify.Report, o Options) error {
	p := newText(w)
	p.line("spcheck compare: %s", headline(r))
	for _, s := range r.Sentences() {
		p.line("%s", s)
	}
	p.line("reference: %s", traceLine(r.Ref))
	p.line("candidate: %s", traceLine(r.Cand))
	if len(r.Tol) > 0 {
		p.line("tolerance overrides: %s", r.Tol)
	}
	for _, l := range ruleLines(r) {
		p.line("%s", l)
	}
	if h := fingerprintHeader(r); h != "" {
		p.line("%s", h)
	}
	if len(r.First()) > 0 {
		p.line("")
		rootLines(p, r)
	}
	p.line("")
	shown, hidden := listed(r, o)
	if len(shown) > 0 {
		t := newTable(w)
		// No kind column: the name's prefix says it (act/, agrad/, grad/, param/), and the
		// first divergence line spells it out.
		t.Header("order", "name", "verdict", "max abs", "max rel", "outside", "×tol", "ref md5", "cand md5")
		for _, res := range shown {
			t.Append(fmt.Sprint(res.Order), res.Name, string(res.Verdict)+roleMark(res),
				num(res.MaxAbs), num(res.MaxRel), outsideCell(res), num(res.TolUnits),
				short(res.RefMD5), short(res.CandMD5))
		}
		if err := t.Render(); err != nil {
			return err
		}
	}
	if hidden > 0 {
		p.line("%s", hiddenLine(r, shown, hidden))
	}
	for _, res := range diagnosed(r) {
		if err := textDiagnosis(p, w, res, o); err != nil {
			return err
		}
	}
	if r.Undiagnosed > 0 {
		p.line("\n(%s no block diagnosis: they follow from the ones above)", verify.Plural(r.Undiagnosed, "later failure")+" ha"+map[bool]string{true: "s", false: "ve"}[r.Undiagnosed == 1])
	}
	biasLines(p, r)
	if rd := redumpLines(r); len(rd) > 0 {
		p.line("")
		for _, s := range rd {
			p.line("%s", s)
		}
	}
	if !r.Verified() {
		if repro := r.Reproduce(); len(repro) > 0 {
			p.line("\nreproduce:")
			for _, s := range repro {
				p.line("  %s", s)
			}
		}
	}
	p.line("\n%s", versionLine())
	return p.err
}

// maxBiasLines bounds the per-rank precision findings listed; the rest are counted.
const maxBiasLines = 8

// biasLines lists the report's per-rank precision findings (verify.RankBias).
func biasLines(p *printer, r *verify.Report) {
	if len(r.Bias) == 0 {
		return
	}
	p.line("\nper-rank precision bias (a finding whether the tensors pass or not):")
	for i, b := range r.Bias {
		if i == maxBiasLines {
			p.line("  … and %d more", len(r.Bias)-maxBiasLines)
			break
		}
		p.line("  %s", b)
	}
}

func textDiagnosis(p *printer, w io.Writer, res *verify.Result, o Options) error {
	d := res.Diagnosis
	p.line("\nblock diagnosis: %s (%s) — %s", res.Name, res.Verdict, diagnosisTitle(d))
	t := newTable(w)
	t.Header(append([]string{"rank", "region", "outside"}, blockHeaders(d)...)...)
	for _, row := range d.Rows {
		cells := []string{rowLabel(row), row.Region, fmt.Sprintf("%d/%d", row.Outside, row.Numel)}
		for _, b := range row.Blocks {
			cells = append(cells, blockCell(b))
		}
		t.Append(cells...)
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

// printer writes lines and keeps the first error. A printer for the terminal (newText) wraps
// lines longer than Width at spaces, continuing them indented; Markdown and XML bodies do not
// wrap.
type printer struct {
	w    io.Writer
	err  error
	wrap int
}

// newText is a printer for terminal text, wrapping at Width.
func newText(w io.Writer) *printer { return &printer{w: w, wrap: Width} }

func (p *printer) line(format string, args ...any) {
	if p.err != nil {
		return
	}
	s := fmt.Sprintf(format, args...)
	if p.wrap > 0 {
		s = ShortPlans(s)
		var out []string
		for _, l := range strings.Split(s, "\n") {
			out = append(out, wrapLine(l, p.wrap)...)
		}
		s = strings.Join(out, "\n")
	}
	_, p.err = fmt.Fprintln(p.w, s)
}

// wrapLine breaks l at spaces into lines of at most width columns (runes), continuing with the
// line's own indent plus four spaces; the spacing inside each piece is kept. A word longer than
// the width stays whole, so does a quoted '…' span (a plan string), and so does a command line
// ("spcheck verify --plan '…'"): all three must stay pasteable.
func wrapLine(l string, width int) []string {
	if utf8.RuneCountInString(l) <= width || isCommand(l) {
		return []string{l}
	}
	indent := l[:len(l)-len(strings.TrimLeft(l, " "))]
	cont := indent + "    "
	var out []string
	for utf8.RuneCountInString(l) > width {
		cut := breakAt(l, len(indent), width)
		if cut < 0 {
			break
		}
		out = append(out, strings.TrimRight(l[:cut], " "))
		l = cont + strings.TrimLeft(l[cut:], " ")
		indent = cont
	}
	return append(out, l)
}

// breakAt is the byte offset of the last space outside a quoted span at or before width runes
// (past the indent), else the first one after; -1 if there is none. A quote opens a span only
// at the start of a word or after '=' (so "stage's" opens none) and closes before a space, a
// comma or the end.
func breakAt(l string, from, width int) int {
	best, quoted, runes := -1, false, 0
	prev := ' '
	for i, r := range l {
		next := byte(' ')
		if j := i + utf8.RuneLen(r); j < len(l) {
			next = l[j]
		}
		switch {
		case r == '\'' && !quoted && (prev == ' ' || prev == '='):
			quoted = true
		case r == '\'' && quoted && (next == ' ' || next == ','):
			quoted = false
		case r == ' ' && !quoted && i > from && prev != ' ':
			if runes <= width || best < 0 {
				best = i
			}
			if runes > width {
				return best
			}
		}
		prev = r
		runes++
	}
	return best
}

// planToken is a plan string as plan.String prints it (its first key is tp), quoted or a word
// of its own.
var planToken = regexp.MustCompile(`(^|[ '])(tp=[^' ]*)`)

// ShortPlans prints every full plan string of s as people write it: only the keys that differ
// from the defaults (plan.Short), which parses back to the same plan.
func ShortPlans(s string) string {
	return planToken.ReplaceAllStringFunc(s, func(m string) string {
		lead, full := "", m
		if m[0] == ' ' || m[0] == '\'' {
			lead, full = m[:1], m[1:]
		}
		p, err := plan.Parse(full)
		if err != nil || p.String() != full {
			return m
		}
		return lead + p.Short()
	})
}

// isCommand reports whether l holds a shell command line ("spcheck verify --plan '…'", also
// after a label such as "reproduce: ").
func isCommand(l string) bool {
	f := strings.Fields(l)
	for i := 0; i+1 < len(f); i++ {
		if f[i] == "spcheck" && slices.Contains(commandNames, f[i+1]) {
			return true
		}
	}
	return false
}

// commandNames are spcheck's commands (a test holds the list to the CLI's).
var commandNames = []string{"bugs", "check", "compare", "diff", "fuzz", "gpu", "inspect", "oracle", "plan", "repro", "run", "verify", "version"}

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
	p.line("seed-001 layout — the same diagnosis redrawn as PaddleFleet#589's table, not a second finding: the gathered")
	p.line("tensor's chunks are listed in reverse, and TPk below is the table's rank %d−k (its labels are swapped):", len(d.Rows)-1)
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
