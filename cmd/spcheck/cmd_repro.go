package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/verify"
)

func init() {
	register(&command{name: "repro", summary: "run one catalogue bug (or worked example) and show what spcheck sees", run: runRepro})
}

func runRepro(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("repro", "BUG|EXAMPLE [plan flags] [--fixed]\n\n"+
		"Runs a catalogue bug ('spcheck bugs' lists them) on its minimal plan — or on the plan the\n"+
		"flags give, applied on top of it — against the oracle, and prints the worked example of\n"+
		"it reproduces, the first divergence with its per-rank block table, the\n"+
		"gradient MD5s of the correct and the buggy run, whether the diagnosis is the one the\n"+
		"catalogue expects, and the one command that re-runs it. Exit 1 when the bug shows (a\n"+
		"verification failure), 0 when it does not, 2 on bad input. A worked example's name\n"+
		"(seed001-develop, vllm33322, …) prints its numbers next to the expected ones.", stderr)
	fixed := fs.Bool("fixed", false, "run the fixed form instead (the bug switched off, same plan)")
	planFlags(fs)
	name, rest, err := splitName(args)
	if err != nil {
		return fail(stderr, "repro", err)
	}
	if code, done := parseFlags(fs, rest); done {
		return code
	}
	if name == "" || fs.NArg() != 0 {
		fs.Usage()
		return exitBadInput
	}
	if e, ok := bugs.LookupExample(name); ok {
		return reproExample(e, stdout, stderr)
	}
	b, err := bugs.Lookup(name)
	if err != nil {
		return fail(stderr, "repro", err)
	}
	if b.Domain == bugs.Serving {
		return reproServing(b, *fixed, stdout, stderr)
	}
	p, err := reproPlan(fs, b)
	if err != nil {
		return fail(stderr, "repro", err)
	}
	if *fixed {
		return reproFixed(b, p, stdout, stderr)
	}
	return reproTraining(b, p, stdout, stderr)
}

// splitName takes the bug name from args (the first argument that is not a flag).
func splitName(args []string) (string, []string, error) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		for _, a := range args {
			if a == "-h" || a == "--help" || a == "-help" {
				return "", args, nil
			}
		}
		return "", args, fmt.Errorf("name a bug or a worked example first: spcheck repro BUG [plan flags] ('spcheck bugs' lists them)")
	}
	return args[0], args[1:], nil
}

// reproPlan is the bug's minimal plan with --plan and the individual plan flags given applied
// on top (so `--tp 4` changes only tp).
func reproPlan(fs *flag.FlagSet, b *bugs.Bug) (plan.Plan, error) {
	p := b.MinimalPlan()
	if err := applyPlanFlags(fs, &p); err != nil {
		return plan.Plan{}, err
	}
	if p.Bug != b.Name {
		return plan.Plan{}, fmt.Errorf("the plan names bug %q; repro runs %q (drop the bug key)", p.Bug, b.Name)
	}
	return p, p.Validate()
}

func header(w io.Writer, b *bugs.Bug) {
	fmt.Fprintf(w, "%s (%s: %s)\n  %s\n  source: %s\n", b.Name, b.Class, bugs.ClassTitle[b.Class], b.Summary, b.Source)
	fmt.Fprintf(w, "  spcheck must show: %s\n", b.Expect.Shows)
}

func reproTraining(b *bugs.Bug, p plan.Plan, stdout, stderr io.Writer) int {
	header(stdout, b)
	q := p
	q.Bug = ""
	fmt.Fprintf(stdout, "  plan: --plan '%s'\n", q)
	if err := b.CanShow(p); err != nil {
		fmt.Fprintf(stdout, "  note: this plan cannot show the bug (%v); the run is the correct one\n", err)
	}
	for _, name := range b.Examples {
		if e, ok := bugs.LookupExample(name); ok {
			if _, err := printExample(stdout, e); err != nil {
				return fail(stderr, "repro", err)
			}
		}
	}
	o, err := bugs.Run(b, p)
	if err != nil {
		return fail(stderr, "repro", err)
	}
	fmt.Fprintf(stdout, "\n== the bug on plan '%s' vs the oracle ==\n", q)
	if o.Report == nil {
		fmt.Fprintf(stdout, "the simulator refuses the run: %s\n", o.Detail)
		if o.RunErr != nil {
			fmt.Fprintf(stdout, "  %s\n", strings.ReplaceAll(o.RunErr.Error(), "\n", "\n  "))
		}
	} else {
		fmt.Fprintf(stdout, "%s\n\n", o.Detail)
		if err := firstDivergence(stdout, o.Report); err != nil {
			return fail(stderr, "repro", err)
		}
		if len(o.Recomputed) > 0 {
			fmt.Fprintf(stdout, "\nrecompute determinism: recomputed activations that differ from their forward: %s\n", strings.Join(o.Recomputed, ", "))
		}
		if err := gradientMD5s(stdout, q, o); err != nil {
			return fail(stderr, "repro", err)
		}
	}
	expected(stdout, o)
	fmt.Fprintf(stdout, "\nre-run: %s\n", o.Command)
	if o.Detected() {
		return exitFailed
	}
	return exitOK
}

// firstDivergence prints the report's first divergence with its block diagnosis, in document
// 001's layout when every receiver holds one gathered tensor.
func firstDivergence(w io.Writer, rep *verify.Report) error {
	sub := *rep
	sub.Results = rep.First()
	sub.Undiagnosed = 0
	fmt.Fprintf(w, "first divergence of %d failing tensors (the whole table: spcheck verify --plan '%s'):\n",
		rep.Failures(), rep.Cand.Plan)
	return reports.Text(w, &sub, reports.Options{Seed001: true})
}

// gradientMD5s prints the loss and gradient MD5s of the correct run (the bug off) next to the
// buggy run's: seed 001's "loss identical, every grad MD5 differs" symptom in numbers.
func gradientMD5s(w io.Writer, correct plan.Plan, o *bugs.Outcome) error {
	ok, err := simulate.Run(correct, nil)
	if err != nil {
		return err
	}
	d, err := verify.Diff(ok, o.Trace, verify.Options{})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\nloss and gradient MD5s, correct run vs buggy run: %s\n", d.Summary())
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
	t.Header("tensor", "correct md5", "buggy md5", "")
	for _, e := range d.Entries {
		same := "differs"
		if e.Equal() {
			same = "same"
		}
		if err := t.Append(e.Name, e.MD5A, e.MD5B, same); err != nil {
			return err
		}
	}
	return t.Render()
}

// expected says whether the diagnosis is the catalogue's.
func expected(w io.Writer, o *bugs.Outcome) {
	if !o.OnMinimalPlan() {
		fmt.Fprintln(w, "\n(the catalogue's expected diagnosis is for the minimal plan; this is another one)")
		return
	}
	if bad := o.Mismatches(); len(bad) > 0 {
		fmt.Fprintf(w, "\ndiagnosis differs from the catalogue's: %s\n", strings.Join(bad, "; "))
		return
	}
	fmt.Fprintln(w, "\ndiagnosis matches the catalogue's")
}

func reproFixed(b *bugs.Bug, p plan.Plan, stdout, stderr io.Writer) int {
	p.Bug = ""
	fmt.Fprintf(stdout, "%s switched off: --plan '%s'\n", b.Name, p)
	rep, err := pipeline.Verify(p, nil, verify.Options{})
	if err != nil {
		return fail(stderr, "repro", err)
	}
	fmt.Fprintf(stdout, "%s\n", verdictWord(rep.Verified()))
	if !rep.Verified() {
		if err := firstDivergence(stdout, rep); err != nil {
			return fail(stderr, "repro", err)
		}
		return exitFailed
	}
	return exitOK
}

func reproServing(b *bugs.Bug, fixed bool, stdout, stderr io.Writer) int {
	header(stdout, b)
	cfg := b.Config()
	if fixed {
		b.Fixed(&cfg)
		fmt.Fprintln(stdout, "  (fixed form: the bug switched off)")
	} else {
		for _, name := range b.Examples {
			if e, ok := bugs.LookupExample(name); ok {
				if _, err := printExample(stdout, e); err != nil {
					return fail(stderr, "repro", err)
				}
			}
		}
	}
	o, err := bugs.RunServing(b, cfg)
	if err != nil {
		return fail(stderr, "repro", err)
	}
	fmt.Fprintln(stdout, "\n== the decode loop ==")
	if err := reports.Serving(stdout, *o.Serving); err != nil {
		return fail(stderr, "repro", err)
	}
	fmt.Fprintf(stdout, "\n%s\n", o.Detail)
	if !fixed {
		expected(stdout, o)
	}
	cmd := o.Command
	if fixed {
		cmd += " --fixed"
	}
	fmt.Fprintf(stdout, "\nre-run: %s\n", cmd)
	if o.Detected() {
		return exitFailed
	}
	return exitOK
}

// printExample prints a worked example: its numbers beside the expected ones, and the verifier's
// report of the buggy run against the correct one.
func printExample(w io.Writer, e *bugs.Example) (*bugs.ExampleResult, error) {
	r, err := e.Run()
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(w, "\n== worked example %s (%s): %s ==\n", e.Name, e.Source, e.Title)
	t := tablewriter.NewTable(w, tablewriter.WithHeaderAutoFormat(tw.Off))
	t.Header("", "what", "spcheck", "expected")
	for _, f := range r.Facts {
		mark := "ok"
		if !f.OK() {
			mark = "DIFFERS"
		}
		if err := t.Append(mark, f.What, f.Got, f.Want); err != nil {
			return nil, err
		}
	}
	if err := t.Render(); err != nil {
		return nil, err
	}
	if r.Gates != nil {
		if err := reports.GateTable(w, *r.Gates); err != nil {
			return r, err
		}
	}
	if r.Launches != nil {
		if err := reports.LaunchTable(w, *r.Launches); err != nil {
			return r, err
		}
	}
	if r.Report != nil {
		fmt.Fprintln(w, "\nthe buggy run compared with the correct one:")
		return r, reports.Text(w, r.Report, reports.Options{Seed001: r.Seed001})
	}
	return r, nil
}

func reproExample(e *bugs.Example, stdout, stderr io.Writer) int {
	r, err := printExample(stdout, e)
	if err != nil {
		return fail(stderr, "repro", err)
	}
	fmt.Fprintf(stdout, "\nre-run: spcheck repro %s\n", e.Name)
	if !r.OK() {
		return exitFailed
	}
	return exitOK
}
