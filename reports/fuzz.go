package reports

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/spcheck/spcheck/fuzz"
	"github.com/spcheck/spcheck/plan"
)

// fuzzProperties are a summary's properties in the order its counts are printed.
var fuzzProperties = []string{fuzz.PropEquivalence, fuzz.PropDetection, fuzz.PropAlgebra, fuzz.PropServing}

// fuzzCounts is "8 equivalence, 1 algebra, 1 serving" (or "no cases").
func fuzzCounts(s *fuzz.Summary) string {
	var counts []string
	for _, k := range fuzzProperties {
		if n := s.Cases[k]; n > 0 {
			counts = append(counts, fmt.Sprintf("%d %s", n, k))
		}
	}
	if len(counts) == 0 {
		return "no cases"
	}
	return strings.Join(counts, ", ")
}

// FuzzOutcome renders the end of a campaign: the cases checked by property, then either that
// every property held (with a bug: that it was not detected) or the counterexample in full.
func FuzzOutcome(w io.Writer, s *fuzz.Summary) error {
	p := newText(w)
	corpus, discarded := "", ""
	if s.CorpusRerun > 0 {
		corpus = fmt.Sprintf(", %d corpus plans re-run", s.CorpusRerun)
	}
	if s.Discarded > 0 {
		discarded = fmt.Sprintf(", %d discarded (no plan drawn on which the bug can show)", s.Discarded)
	}
	p.line("fuzz: %s in %.1fs%s%s", fuzzCounts(s), s.Seconds, corpus, discarded)
	switch {
	case s.Failed():
		if p.err != nil {
			return p.err
		}
		return Counterexample(w, s.Seed, s.Counterexamples[0])
	case s.Bug != "":
		p.line("fuzz: bug %s was not detected", s.Bug)
	default:
		p.line("fuzz: every property held")
	}
	return p.err
}

// FuzzMerge renders merged shard summaries: the shards and cases, then every counterexample.
func FuzzMerge(w io.Writer, m *fuzz.Summary) error {
	p := newText(w)
	p.line("fuzz merge: seed %d, shards %v of %d: %s, %d counterexample(s)", m.Seed, m.ShardsRun, m.Shards,
		fuzzCounts(m), len(m.Counterexamples))
	for _, cx := range m.Counterexamples {
		if p.err != nil {
			return p.err
		}
		p.err = Counterexample(w, m.Seed, cx)
	}
	return p.err
}

// Counterexample renders a falsified property: how it was found, the case drawn and the one it
// shrank to, the command that reproduces it, then its evidence (the verifier's report, the
// serving run, or the message).
func Counterexample(w io.Writer, seed int64, cx fuzz.Counterexample) error {
	p := newText(w)
	where := fmt.Sprintf("case %d of the campaign with seed %d (case seed %d)", cx.Case, seed, cx.CaseSeed)
	if cx.Case < 0 {
		where = "corpus plan " + cx.Corpus
	}
	what := cx.Property
	if cx.Bug != "" {
		what += " of " + cx.Bug
	}
	p.line("\nCOUNTEREXAMPLE (%s) found after %.1fs: %s", what, cx.DetectSeconds, where)
	p.line("  drawn:     %s", cx.Drawn)
	p.line("  shrunk:    %s", cx.Shrunk)
	p.line("             (%d shrink steps in %.1fs)", cx.ShrinkSteps, cx.ShrinkSeconds)
	if cx.Saved != "" {
		p.line("  saved to:  %s", cx.Saved)
	}
	p.line("  reproduce: %s\n", cx.Reproduce)
	if p.err != nil {
		return p.err
	}
	diag, err := diagnosisText(cx)
	if err != nil {
		return err
	}
	p.line("%s", strings.TrimRight(diag, "\n"))
	return p.err
}

// diagnosisText is a counterexample's evidence as text: its message, then the rendering of the
// verifier's report or of the serving run.
func diagnosisText(cx fuzz.Counterexample) (string, error) {
	var b bytes.Buffer
	if cx.Diagnosis != "" {
		b.WriteString(strings.TrimRight(cx.Diagnosis, "\n") + "\n")
	}
	var err error
	switch {
	case cx.Report != nil:
		err = Text(&b, cx.Report, Options{})
	case cx.Serving != nil:
		err = Serving(&b, *cx.Serving)
	}
	return b.String(), err
}

// FuzzSummaryJSON writes a campaign's summary as indented JSON, the file a shard leaves for
// fuzz --merge (fuzz.ReadSummary reads it back): each counterexample's evidence is stored as
// its text rendering in "diagnosis".
func FuzzSummaryJSON(w io.Writer, s *fuzz.Summary) error {
	out := *s
	out.Counterexamples = make([]fuzz.Counterexample, len(s.Counterexamples))
	for i, cx := range s.Counterexamples {
		diag, err := diagnosisText(cx)
		if err != nil {
			return err
		}
		cx.Diagnosis, cx.Report, cx.Serving = diag, nil, nil
		out.Counterexamples[i] = cx
	}
	b, err := json.MarshalIndent(&out, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// MutationTable renders the mutation score: per bug, whether it was detected, the median time
// to detection, the cases run until detection, the shrink steps and time, and the shrunk plan
// (keys that differ from the defaults) or the shrunk serving scenario's first line.
func MutationTable(w io.Writer, rs []fuzz.MutationResult) error {
	var rows [][]string
	for _, r := range rs {
		det := fmt.Sprintf("%d/%d", r.Detected, r.Trials)
		if r.Trials == 1 {
			det = map[bool]string{true: "yes", false: "no"}[r.Detected == 1]
		}
		if r.First == nil {
			rows = append(rows, []string{r.Bug, det, "-", "-", "-", "-", r.Why})
			continue
		}
		cases := make([]string, len(r.Cases))
		for i, c := range r.Cases {
			cases[i] = fmt.Sprint(c)
		}
		rows = append(rows, []string{r.Bug, det, fmt.Sprintf("%.2fs", r.MedianDetect()), strings.Join(cases, ","),
			fmt.Sprint(r.First.ShrinkSteps), fmt.Sprintf("%.2fs", r.First.ShrinkSeconds), shrunkCell(*r.First)})
	}
	if err := table(w, []string{"bug", "detected", "time to detect", "cases", "shrink steps", "shrink time", "shrunk"}, rows); err != nil {
		return err
	}
	d, n := fuzz.Score(rs)
	_, err := fmt.Fprintf(w, "mutation score: %d/%d bugs detected\n", d, n)
	return err
}

// shrunkCellWidth bounds a serving scenario's line in the mutation table.
const shrunkCellWidth = 80

// shrunkCell is the shrunk plan without the bug key (the row names it), or the first line of a
// shrunk serving scenario, cut to shrunkCellWidth.
func shrunkCell(cx fuzz.Counterexample) string {
	if p, err := plan.Parse(cx.Shrunk); err == nil {
		p.Bug = ""
		return fuzz.Compact(p)
	}
	s, _, _ := strings.Cut(strings.TrimPrefix(cx.Shrunk, "initialState="), "\n")
	if utf8.RuneCountInString(s) <= shrunkCellWidth {
		return s
	}
	return string([]rune(s)[:shrunkCellWidth-1]) + "…"
}
