package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/reports"
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

func reproTraining(b *bugs.Bug, p plan.Plan, stdout, stderr io.Writer) int {
	if err := reports.BugHeader(stdout, b); err != nil {
		return fail(stderr, "repro", err)
	}
	q := p
	q.Bug = ""
	fmt.Fprintf(stdout, "  plan: --plan '%s'\n", q.Short())
	if err := b.CanShow(p); err != nil {
		fmt.Fprintf(stdout, "  note: this plan cannot show the bug (%v); the run is the correct one\n", err)
	}
	if err := bugExamples(stdout, b); err != nil {
		return fail(stderr, "repro", err)
	}
	o, err := bugs.Run(b, p)
	if err != nil {
		return fail(stderr, "repro", err)
	}
	fmt.Fprintf(stdout, "\n== the bug on plan '%s' vs the oracle ==\n", q.Short())
	if err := reports.BugRun(stdout, o); err != nil {
		return fail(stderr, "repro", err)
	}
	if o.Report != nil {
		d, err := o.GradientMD5s()
		if err == nil {
			err = reports.GradientMD5s(stdout, d)
		}
		if err != nil {
			return fail(stderr, "repro", err)
		}
	}
	if err := reports.Expectation(stdout, o); err != nil {
		return fail(stderr, "repro", err)
	}
	fmt.Fprintf(stdout, "\nre-run: %s\n", reports.ShortPlans(o.Command))
	if o.Detected() {
		return exitFailed
	}
	return exitOK
}

// bugExamples prints the worked examples of a bug.
func bugExamples(w io.Writer, b *bugs.Bug) error {
	for _, name := range b.Examples {
		if e, ok := bugs.LookupExample(name); ok {
			if _, err := printExample(w, e); err != nil {
				return err
			}
		}
	}
	return nil
}

func reproFixed(b *bugs.Bug, p plan.Plan, stdout, stderr io.Writer) int {
	p.Bug = ""
	fmt.Fprintf(stdout, "%s switched off: --plan '%s'\n", b.Name, p.Short())
	rep, err := pipeline.Verify(p, nil, verify.Options{})
	if err != nil {
		return fail(stderr, "repro", err)
	}
	fmt.Fprintf(stdout, "%s\n", verdictWord(rep.Verified()))
	if !rep.Verified() {
		if err := reports.FirstDivergence(stdout, rep); err != nil {
			return fail(stderr, "repro", err)
		}
		return exitFailed
	}
	return exitOK
}

func reproServing(b *bugs.Bug, fixed bool, stdout, stderr io.Writer) int {
	if err := reports.BugHeader(stdout, b); err != nil {
		return fail(stderr, "repro", err)
	}
	cfg := b.Config()
	if fixed {
		b.Fixed(&cfg)
		fmt.Fprintln(stdout, "  (fixed form: the bug switched off)")
	} else if err := bugExamples(stdout, b); err != nil {
		return fail(stderr, "repro", err)
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
		if err := reports.Expectation(stdout, o); err != nil {
			return fail(stderr, "repro", err)
		}
	}
	cmd := o.Command
	if fixed {
		cmd += " --fixed"
	}
	fmt.Fprintf(stdout, "\nre-run: %s\n", reports.ShortPlans(cmd))
	if o.Detected() {
		return exitFailed
	}
	return exitOK
}

// printExample runs a worked example and prints it.
func printExample(w io.Writer, e *bugs.Example) (*bugs.ExampleResult, error) {
	r, err := e.Run()
	if err != nil {
		return nil, err
	}
	return r, reports.Example(w, r)
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
