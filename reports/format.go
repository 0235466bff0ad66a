package reports

import (
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/spcheck/spcheck/internal/buildinfo"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// Format names a document format: the value of every command's --format flag.
type Format string

// The formats, one list for every document; each document offers the ones it can be written
// in (ReportFormats, DiffFormats, …).
const (
	FormatText     Format = "text"  // terminal tables
	FormatMarkdown Format = "md"    // a PR comment or $GITHUB_STEP_SUMMARY ("markdown" is read as md)
	FormatJSON     Format = "json"  // stable schemas, docs/report-json.md
	FormatJUnit    Format = "junit" // JUnit XML for CI test views
	FormatHTML     Format = "html"  // one self-contained file
)

// Formats is every format, in the order usage messages list them.
var Formats = []Format{FormatText, FormatMarkdown, FormatJSON, FormatJUnit, FormatHTML}

// ReportFormats are the formats of a comparison report (Write).
var ReportFormats = Formats

// DiffFormats are the formats of an A/B diff (WriteDiff).
var DiffFormats = []Format{FormatText, FormatMarkdown, FormatJSON}

// GateFormats are the formats of spcheck check's report (the gate).
var GateFormats = []Format{FormatText, FormatMarkdown, FormatJSON, FormatJUnit}

// ParseFormat reads a --format value: one of allowed, or "markdown" for md when md is allowed.
func ParseFormat(s string, allowed []Format) (Format, error) {
	f := Format(s)
	if s == "markdown" {
		f = FormatMarkdown
	}
	if slices.Contains(allowed, f) {
		return f, nil
	}
	return "", fmt.Errorf("unknown format %q (want one of %s)", s, FormatList(allowed))
}

// FormatList is "text, md, json".
func FormatList(fs []Format) string {
	parts := make([]string, len(fs))
	for i, f := range fs {
		parts[i] = string(f)
	}
	return strings.Join(parts, ", ")
}

// FormatFlag defines --format on fs, defaulting to text and accepting only allowed: a bad value
// fails flag parsing (a usage error) before any work is done.
func FormatFlag(fs *flag.FlagSet, allowed []Format) *Format {
	v := &formatValue{f: FormatText, allowed: allowed}
	fs.Var(v, "format", "report `format`: "+FormatList(allowed))
	return &v.f
}

type formatValue struct {
	f       Format
	allowed []Format
}

func (v *formatValue) String() string {
	if v == nil {
		return ""
	}
	return string(v.f)
}

func (v *formatValue) Set(s string) (err error) {
	v.f, err = ParseFormat(s, v.allowed)
	return err
}

// writers maps each format a document offers to its renderer.
type writers map[Format]func(io.Writer) error

// write renders with the writer of f; a format the document does not offer is an error (the
// CLI never gets there: FormatFlag rejects it first).
func (ws writers) write(w io.Writer, f Format, doc string, allowed []Format) error {
	if f == "" {
		f = FormatText
	}
	if r, ok := ws[f]; ok && slices.Contains(allowed, f) {
		return r(w)
	}
	return fmt.Errorf("a %s has no %q format (want one of %s)", doc, f, FormatList(allowed))
}

// Options tune the human-readable formats.
type Options struct {
	// All lists every tensor in text and Markdown tables; otherwise only the tensors that are
	// neither identical nor close are listed, and a passing report prints a one-line summary.
	All bool
	// Seed001 adds, under a chunk-level diagnosis where every receiver holds the same data, the
	// rendering of PaddleFleet#589: the gathered tensor with its chunks in the PR discussion's order,
	// the lost chunks, and the correct values with the PR discussion's TP labels.
	Seed001 bool
}

// Write renders r in format f (one of ReportFormats).
func Write(w io.Writer, r *verify.Report, f Format, o Options) error {
	return writers{
		FormatText:     func(w io.Writer) error { return Text(w, r, o) },
		FormatMarkdown: func(w io.Writer) error { return Markdown(w, r, o) },
		FormatJSON:     func(w io.Writer) error { return JSON(w, r) },
		FormatJUnit:    func(w io.Writer) error { return JUnit(w, r) },
		FormatHTML:     func(w io.Writer) error { return HTML(w, r) },
	}.write(w, f, "comparison report", ReportFormats)
}

// WriteDiff renders d in format f (one of DiffFormats).
func WriteDiff(w io.Writer, d *verify.DiffReport, f Format) error {
	return writers{
		FormatText:     func(w io.Writer) error { return DiffText(w, d) },
		FormatMarkdown: func(w io.Writer) error { return DiffMarkdown(w, d) },
		FormatJSON:     func(w io.Writer) error { return DiffJSON(w, d) },
	}.write(w, f, "diff", DiffFormats)
}

// num prints a measured number compactly.
func num(x float64) string {
	switch {
	case math.IsNaN(x):
		return "nan"
	case math.IsInf(x, 1):
		return "inf"
	case math.IsInf(x, -1):
		return "-inf"
	case x == 0:
		return "0"
	}
	return strconv.FormatFloat(x, 'g', 3, 64)
}

// val prints a tensor value: enough digits to tell values apart, integers as integers.
func val(x float64) string {
	switch {
	case math.IsNaN(x):
		return "nan"
	case math.IsInf(x, 0):
		return num(x)
	}
	return strconv.FormatFloat(x, 'g', 5, 64)
}

// values prints abbreviated values separated by sep; past valuesWidth runes it keeps only
// valuesKept values at each end, so a table cell or a line stays narrow.
func values(v verify.Values, sep string) string {
	s := joinValues(v, sep)
	if utf8.RuneCountInString(s) <= valuesWidth || len(v.Head) <= valuesKept && len(v.Tail) <= valuesKept {
		return s
	}
	head, tail := v.Head, v.Tail
	elided := v.Elided
	if v.Elided == 0 { // Head holds them all
		all := append(append([]float64{}, v.Head...), v.Tail...)
		head, tail = all[:valuesKept], all[len(all)-valuesKept:]
		elided = len(all) - 2*valuesKept
	} else {
		elided += max(0, len(head)-valuesKept) + max(0, len(tail)-valuesKept)
		head, tail = head[:min(len(head), valuesKept)], tail[max(0, len(tail)-valuesKept):]
	}
	if elided <= 0 {
		return s
	}
	return joinValues(verify.Values{Head: head, Tail: tail, Elided: elided}, sep)
}

// valuesWidth and valuesKept bound a printed run of values (see values).
const (
	valuesWidth = 48
	valuesKept  = 3
)

func joinValues(v verify.Values, sep string) string {
	parts := make([]string, 0, len(v.Head)+len(v.Tail)+1)
	for _, x := range v.Head {
		parts = append(parts, val(x))
	}
	if v.Elided > 0 {
		parts = append(parts, fmt.Sprintf("…(%d)…", v.Elided))
	}
	for _, x := range v.Tail {
		parts = append(parts, val(x))
	}
	return strings.Join(parts, sep)
}

// headline is the one-line outcome: "VERIFIED — 3 identical, 1 close (4 tensors)".
func headline(r *verify.Report) string {
	status := "VERIFIED"
	if !r.Verified() {
		status = "FAILED"
	}
	return fmt.Sprintf("%s — %s (%s)", status, counts(r), verify.Plural(len(r.Results), "tensor"))
}

func counts(r *verify.Report) string {
	var parts []string
	for _, v := range verify.Verdicts {
		if n := r.Count(v); n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, v))
		}
	}
	if len(parts) == 0 {
		return "no tensors"
	}
	return strings.Join(parts, ", ")
}

// traceLine describes one side: "oracle, world 1, plan 'hidden=16', seed 1".
func traceLine(t verify.TraceInfo) string {
	s := fmt.Sprintf("%s — %s, world %d", t.Dir, producer(t), t.World)
	if t.Mesh != "" {
		s += " [" + t.Mesh + "]"
	}
	if t.Plan != "" {
		s += fmt.Sprintf(", plan '%s'", t.Plan)
	}
	if t.Seed != 0 {
		s += fmt.Sprintf(", seed %d", t.Seed)
	}
	return s + fmt.Sprintf(", %s, %s", verify.Plural(t.Tensors, "tensor"), verify.FormatBytes(t.Bytes))
}

// producer names who wrote a trace and, when recorded, its version: "oracle (v1.2.3)".
func producer(t verify.TraceInfo) string {
	if t.ProducerVersion == "" {
		return dash(t.Producer)
	}
	return fmt.Sprintf("%s (%s)", dash(t.Producer), t.ProducerVersion)
}

// versionLine closes every report: which spcheck wrote it.
func versionLine() string {
	return fmt.Sprintf("spcheck %s, trace format %s/%d", buildinfo.Version(), trace.Format, trace.Version)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// firstLine describes the first divergence.
func firstLine(res *verify.Result) string {
	s := fmt.Sprintf("%s (%s, order %d): %s", res.Name, res.Kind, res.Order, res.Verdict)
	if len(res.Ranks) > 0 {
		s += " on " + rankWords(res.Ranks)
	}
	if reg := res.Region(); reg != "" {
		s += " in " + reg
	}
	return s
}

// signatureLines is the divergence's signature ("signature: scaled ×2 (tp)"), for a
// diagnosed tensor.
func signatureLines(res *verify.Result) []string {
	if res.Signature == nil {
		return nil
	}
	return []string{"signature: " + res.Signature.String()}
}

// detailLine gives the numbers of a failing tensor.
func detailLine(res *verify.Result) string {
	switch res.Verdict {
	case verify.ShapeMismatch:
		return fmt.Sprintf("shape %v in the reference, %v in the candidate", res.RefShape, res.CandShape)
	case verify.Missing:
		return "in the reference only"
	case verify.Extra:
		return "in the candidate only"
	}
	s := fmt.Sprintf("%s outside tolerance (rtol %s), max abs err %s, max rel err %s, worst %s× tol",
		outsideWords(res), num(res.RTol), num(res.MaxAbs), num(res.MaxRel), num(res.TolUnits))
	if res.NonFinite > 0 {
		s += ", " + verify.Plural(res.NonFinite, "non-finite disagreement")
	}
	return s
}

func rankWords(rs []int) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = strconv.Itoa(r)
	}
	if len(rs) == 1 {
		return "rank " + parts[0]
	}
	return "ranks " + strings.Join(parts, ", ")
}

// replicaLines describe disagreeing copies: "copies of tp=0 disagree: ranks [0] | [1], max diff 4".
func replicaLines(res *verify.Result) []string {
	var out []string
	for _, side := range []struct {
		name string
		ds   []verify.Disagreement
	}{{"reference", res.RefReplicas}, {"candidate", res.CandReplicas}} {
		for _, d := range side.ds {
			groups := make([]string, len(d.Groups))
			for i, g := range d.Groups {
				groups[i] = fmt.Sprint(g)
			}
			where := ""
			if d.Cell != "" {
				where = " of " + d.Cell
			}
			out = append(out, fmt.Sprintf("%s copies%s disagree: ranks %s hold different values (max diff %s)",
				side.name, where, strings.Join(groups, " vs "), num(d.MaxAbs)))
		}
	}
	return out
}

// followWords is "1 later failure follows" or "3 later failures follow".
func followWords(n int) string {
	if n == 1 {
		return "1 later failure follows"
	}
	return fmt.Sprintf("%d later failures follow", n)
}

// blockName names a reference block: "r1.b0" is block 0 of the piece rank 1 should hold.
func blockName(id *verify.BlockID) string { return fmt.Sprintf("r%d.b%d", id.Rank, id.Block) }

// blockCell describes a candidate block: its class and what it holds.
func blockCell(b verify.Block) string {
	v := values(b.Actual, " ")
	switch b.Class {
	case verify.Correct:
		return "ok: " + v
	case verify.Misplaced:
		return "misplaced, holds " + blockName(b.Source) + ": " + v
	case verify.Duplicated:
		return "duplicate of " + blockName(b.Source) + ": " + v
	case verify.Scaled:
		return verify.FormatScale(b.Scale, b.ScaleName) + ": " + v
	case verify.SlightlyOff:
		return "slightly off (precision): " + v
	}
	return "garbage: " + v + " ≠ " + values(b.Expected, " ")
}

// rowLabel is "0 (tp=0)".
func rowLabel(row verify.Row) string {
	if row.Rank < 0 {
		return "Σ sum"
	}
	if len(row.Coord) == 0 {
		return strconv.Itoa(row.Rank)
	}
	return fmt.Sprintf("%d (%s)", row.Rank, row.Coord)
}

// blockHeaders are the column titles of a diagnosis table.
func blockHeaders(d *verify.Diagnosis) []string {
	if d.Level == verify.LevelShard {
		return []string{"piece"}
	}
	hs := make([]string, d.Parts)
	for j := range hs {
		hs[j] = fmt.Sprintf("chunk %d", j)
	}
	return hs
}

// diagnosisTitle is "flat chunks, 2 per piece" or "whole pieces".
func diagnosisTitle(d *verify.Diagnosis) string {
	if d.Level == verify.LevelChunk {
		return fmt.Sprintf("each rank's piece cut into %d flat chunks (the unit of partial P2P); rK.bJ = chunk J of what rank K should hold", d.Parts)
	}
	return "whole pieces; rK.b0 = what rank K should hold"
}

// lostLine is "lost: r0.b1 [100 120 140 160]; r1.b0 [180 200 220 240]".
func lostLine(d *verify.Diagnosis) string {
	if len(d.Lost) == 0 {
		return ""
	}
	parts := make([]string, len(d.Lost))
	for i, l := range d.Lost {
		parts[i] = fmt.Sprintf("%s (rank %d", blockName(&l), l.Rank)
		if len(l.Coord) > 0 {
			parts[i] += ", " + l.Coord.String()
		}
		parts[i] += ") [" + values(l.Values, " ") + "]"
	}
	return "lost: " + strings.Join(parts, "; ")
}

// diagnosed lists the results that carry a diagnosis, in order.
func diagnosed(r *verify.Report) []*verify.Result {
	var out []*verify.Result
	for _, res := range r.Results {
		if res.Diagnosis != nil {
			out = append(out, res)
		}
	}
	return out
}

// listed is what a text or Markdown table shows: every tensor with Options.All, else the ones
// that are neither identical nor close (a passing report lists none).
func listed(r *verify.Report, o Options) (shown []*verify.Result, hidden int) {
	if o.All {
		return r.Results, 0
	}
	for _, res := range r.Results {
		if res.Verdict.Passed() {
			hidden++
		} else {
			shown = append(shown, res)
		}
	}
	return shown, hidden
}

// hiddenLine says what the table left out.
func hiddenLine(r *verify.Report, shown []*verify.Result, hidden int) string {
	if len(shown) == 0 {
		return passSummary(r)
	}
	return fmt.Sprintf("(%s within tolerance not listed; --all lists every tensor)", verify.Plural(hidden, "tensor"))
}

func short(md5 string) string {
	if len(md5) > 8 {
		return md5[:8]
	}
	if md5 == "" {
		return "-"
	}
	return md5
}

func roleMark(res *verify.Result) string {
	switch res.Role {
	case verify.Root:
		return " (first)"
	case verify.Independent:
		return " (root)"
	case verify.Consequence:
		return " (conseq.)"
	}
	return ""
}

// ruleLines describes the --tol and --ignore rules of r and how each applied, in the order
// given: "tolerance rule --tol '^grad/=1e-6' applied to 12 tensors", a warning for a rule that matched
// no tensor, and for an ignore rule the tensors it left out.
func ruleLines(r *verify.Report) []string {
	var out []string
	for _, u := range r.Rules {
		switch {
		case u.Unmatched() && u.Shadowed > 0:
			out = append(out, fmt.Sprintf("warning: %s applied to no tensor (an earlier rule comes first for the %s it matches)", u, verify.Plural(u.Shadowed, "tensor")))
		case u.Unmatched():
			out = append(out, fmt.Sprintf("warning: %s matched no tensor", u))
		case u.Flag == "tol":
			out = append(out, fmt.Sprintf("tolerance rule %s applied to %s", u, verify.Plural(u.Matched, "tensor")))
		default:
			var names []string
			for _, t := range r.Ignored {
				if t.Pattern == u.Pattern {
					names = append(names, t.Name)
				}
			}
			out = append(out, fmt.Sprintf("ignored by %s (%s): %s", u, verify.Plural(u.Matched, "tensor"), strings.Join(names, ", ")))
		}
	}
	return out
}
