package main

import (
	"fmt"
	"github.com/spcheck/spcheck/bugs"
	"io"

	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/verify"
)

func init() {
	register(&command{name: "verify", summary: "simulate a plan, run its oracle, compare them: verdict table, exit 0/1/2", run: runVerify})
}

func runVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("verify", "[plan flags] [--format F] [--out FILE]\n\n"+
		"Runs the oracle and the simulator on the plan in memory, reassembles every simulated\n"+
		"tensor by placement and compares it with the oracle's. Exit 0: every tensor within\n"+
		"tolerance; 1: some differ (the report names the first divergence and diagnoses it);\n"+
		"2: bad input, or programs whose collectives do not match.", stderr)
	tol := addTolFlags(fs, "relative tolerance: one number for every float dtype or dtype=number pairs; default: in float64 a per-dtype constant, in fp32/bf16/fp16 the noise of the plan's single-device run in that dtype (docs/tolerance.md)")
	format := reports.FormatFlag(fs, reports.ReportFormats)
	out := fs.String("out", "", "write the report to this file; stdout still gets the verdict, the first divergence with each root's one-line diagnosis, and the reproduce commands")
	all := fs.Bool("all", false, "list every tensor in text and md reports, identical ones included")
	build := planFlags(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		return fail(stderr, "verify", fmt.Errorf("unexpected argument %q (plan keys are flags: --tp 2 or --plan 'tp=2')", fs.Arg(0)))
	}
	p, err := build()
	if err != nil {
		return fail(stderr, "verify", err)
	}
	v, err := bugs.VariantOf(p)
	if err != nil {
		return fail(stderr, "verify", err)
	}
	var opt verify.Options
	if err = tol.apply(&opt, false); err != nil {
		return fail(stderr, "verify", err)
	}
	if opt.Progress = progressWriter(stderr); opt.Progress != nil {
		startLine(opt.Progress, "verify", p, true)
	}
	rep, err := pipeline.Verify(p, v, opt)
	if err != nil {
		return fail(stderr, "verify", err)
	}
	if *format == "text" && *out == "" {
		fmt.Fprintf(stdout, "--plan '%s'\n", p.Short())
	}
	render := func(w io.Writer) error { return reports.Write(w, rep, *format, reports.Options{All: *all}) }
	if err := writeReport(*out, stdout, render); err != nil {
		return fail(stderr, "verify", err)
	}
	if *out != "" {
		if err := outSummary(stdout, rep, *format, *out); err != nil {
			return fail(stderr, "verify", err)
		}
		fmt.Fprintf(stdout, "  --plan '%s'\n", p.Short())
	}
	if !rep.Verified() {
		return exitFailed
	}
	return exitOK
}
