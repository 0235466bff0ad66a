package main

import (
	"fmt"
	"io"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/reports"
)

func init() {
	register(&command{name: "check", summary: "the CI gate: correct plans verify, every catalogue bug is caught as expected, fixed forms verify", run: runCheck})
}

func runCheck(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("check", "[--format F] [--out FILE]\n\n"+
		"Runs spcheck's gate in memory: a matrix of correct plans (each must verify against the\n"+
		"oracle); every catalogue bug on its minimal plan (each must be detected with its expected\n"+
		"verdict, first-divergence tensor and diagnosis); each bug's fixed form on the same plan\n"+
		"(must verify); and the worked examples (their hand-worked numbers). Exit 0\n"+
		"only when all hold, 1 otherwise. JUnit and Markdown are what CI publishes.", stderr)
	format := reports.FormatFlag(fs, reports.GateFormats)
	out := fs.String("out", "", "write the report to this file (the one-line outcome still goes to stdout)")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		return fail(stderr, "check", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	g := bugs.Gate()
	render := func(w io.Writer) error { return reports.Gate(w, g, *format) }
	if err := writeReport(*out, stdout, render); err != nil {
		return fail(stderr, "check", err)
	}
	if *out != "" {
		fmt.Fprintf(stdout, "%s; report in %s\n", g.Summary(), *out)
	}
	if !g.OK() {
		return exitFailed
	}
	return exitOK
}
