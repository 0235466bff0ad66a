package reports

import (
	"fmt"
	"io"
	"strings"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/verify"
)

// The documents of spcheck repro: a catalogue bug's header, its worked examples, what spcheck
// saw when it ran the bug (the first divergence with its block table and signature, the
// gradient MD5s of the correct and the buggy run), and whether that is the catalogue's
// expected diagnosis. The bugs package builds the outcomes; these functions only render them.

// Catalogue lists the bugs one line each (name, class, summary, source); verbose adds each
// one's minimal plan, what spcheck must show and its expected first divergence. A legend of the
// classes ends it.
func Catalogue(w io.Writer, bs []*bugs.Bug, verbose bool) error {
	p := newText(w)
	for _, b := range bs {
		p.line("%-37s %s  %s  [%s]", b.Name, b.Class, b.Summary, b.Source)
		if !verbose {
			continue
		}
		if b.Domain == bugs.Training {
			p.line("    plan:  %s", b.Plan)
		}
		p.line("    shows: %s", b.Expect.Shows)
		if d := expectLine(b); d != "" {
			p.line("    first: %s", d)
		}
	}
	var legend []string
	for _, c := range []bugs.Class{bugs.C1, bugs.C2, bugs.C3, bugs.C4, bugs.C5, bugs.C6, bugs.C7} {
		legend = append(legend, fmt.Sprintf("%s %s", c, bugs.ClassTitle[c]))
	}
	p.line("\nclasses: %s", strings.Join(legend, "; "))
	return p.err
}

// expectLine is a bug's expected first divergence in one line.
func expectLine(b *bugs.Bug) string {
	ex := b.Expect
	if b.Domain == bugs.Serving {
		var cls []string
		for _, c := range ex.Classes {
			cls = append(cls, string(c))
		}
		return strings.Join(cls, ", ")
	}
	return fmt.Sprintf("%s at %s (%s)", ex.Verdict, ex.First, ex.Signature)
}

// BugHeader is the bug's name, class, summary, source and what spcheck must show.
func BugHeader(w io.Writer, b *bugs.Bug) error {
	p := newText(w)
	p.line("%s (%s: %s)\n  %s\n  source: %s", b.Name, b.Class, bugs.ClassTitle[b.Class], b.Summary, b.Source)
	p.line("  spcheck must show: %s", b.Expect.Shows)
	return p.err
}

// Example renders a worked example: its numbers beside the hand-worked ones, its serving
// tables, and the verifier's report of the buggy run against the correct one.
func Example(w io.Writer, r *bugs.ExampleResult) error {
	e := r.Example
	p := newText(w)
	p.line("\n== worked example %s (%s): %s ==", e.Name, e.Source, e.Title)
	if p.err != nil {
		return p.err
	}
	rows := make([][]string, len(r.Facts))
	for i, f := range r.Facts {
		mark := "ok"
		if !f.OK() {
			mark = "DIFFERS"
		}
		rows[i] = []string{mark, f.What, f.Got, f.Want}
	}
	if err := table(w, []string{"", "what", "spcheck", "expected"}, rows); err != nil {
		return err
	}
	if r.Gates != nil {
		if err := GateTable(w, *r.Gates); err != nil {
			return err
		}
	}
	if r.Launches != nil {
		if err := LaunchTable(w, *r.Launches); err != nil {
			return err
		}
	}
	if r.Report != nil {
		p.line("\nthe buggy run compared with the correct one:")
		if p.err != nil {
			return p.err
		}
		return Text(w, r.Report, Options{Seed001: r.Seed001})
	}
	return nil
}

// FirstDivergence renders a report's first divergence alone, with its block diagnosis and
// signature, in PaddleFleet#589's layout when every receiver holds one gathered tensor.
func FirstDivergence(w io.Writer, rep *verify.Report) error {
	sub := *rep
	sub.Results = rep.First()
	sub.Undiagnosed = 0
	p := newText(w)
	p.line("first divergence of %s; the whole table:\n  spcheck verify --plan '%s'", verify.Plural(rep.Failures(), "failing tensor"), rep.Cand.Plan)
	if p.err != nil {
		return p.err
	}
	return Text(w, &sub, Options{Seed001: true})
}

// BugRun renders what spcheck saw running a training bug against the oracle: the run the
// simulator refused (the failing computation), or the outcome in one line, the first divergence
// and the activations whose recompute differs from their forward.
func BugRun(w io.Writer, o *bugs.Outcome) error {
	p := newText(w)
	if o.Report == nil {
		p.line("the simulator refuses the run: %s", o.Detail)
		if o.RunErr != nil {
			p.line("  %s", strings.ReplaceAll(o.RunErr.Error(), "\n", "\n  "))
		}
		return p.err
	}
	p.line("%s\n", o.Detail)
	if p.err != nil {
		return p.err
	}
	if err := FirstDivergence(w, o.Report); err != nil {
		return err
	}
	if len(o.Recomputed) > 0 {
		p.line("\nrecompute determinism: recomputed activations that differ from their forward: %s", strings.Join(o.Recomputed, ", "))
	}
	return p.err
}

// GradientMD5s renders the loss and gradient MD5s of the correct run (A) beside the buggy
// run's (B): PaddleFleet#589's "loss identical, every grad MD5 differs" symptom in numbers.
func GradientMD5s(w io.Writer, d *verify.DiffReport) error {
	if _, err := fmt.Fprintf(w, "\nloss and gradient MD5s, correct run vs buggy run: %s\n", d.Summary()); err != nil {
		return err
	}
	rows := make([][]string, len(d.Entries))
	for i, e := range d.Entries {
		same := "differs"
		if e.Equal() {
			same = "same"
		}
		rows[i] = []string{e.Name, e.MD5A, e.MD5B, same}
	}
	return table(w, []string{"tensor", "correct md5", "buggy md5", ""}, rows)
}

// Expectation says whether the outcome is the catalogue's expected diagnosis.
func Expectation(w io.Writer, o *bugs.Outcome) error {
	var err error
	switch bad := o.Mismatches(); {
	case !o.OnMinimalPlan():
		_, err = fmt.Fprintln(w, "\n(the catalogue's expected diagnosis is for the minimal plan; this is another one)")
	case len(bad) > 0:
		_, err = fmt.Fprintf(w, "\ndiagnosis differs from the catalogue's: %s\n", strings.Join(bad, "; "))
	default:
		_, err = fmt.Fprintln(w, "\ndiagnosis matches the catalogue's")
	}
	return err
}
