package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

func init() {
	register(&command{name: "diff", summary: "bitwise A/B diff of two traces: per-gradient MD5s, equal or not", run: runDiff})
}

func runDiff(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("diff", "A_DIR B_DIR [flags]", stderr)
	kinds := fs.String("kinds", "loss,param_grad", "comma-separated tensor kinds to compare (input, activation, activation_grad, param, param_grad, loss, output)")
	rename := fs.String("rename", "", "file of rename rules, as for compare")
	format := reports.FormatFlag(fs, reports.DiffFormats)
	out := fs.String("out", "", "write the report to this file (the one-line summary still goes to stdout)")
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	if len(pos) != 2 {
		fs.Usage()
		return exitBadInput
	}
	var ks []trace.Kind
	for _, k := range strings.Split(*kinds, ",") {
		kind := trace.Kind(strings.TrimSpace(k))
		if !containsKind(trace.Kinds, kind) {
			return fail(stderr, "diff", fmt.Errorf("--kinds: unknown kind %q (want %v)", k, trace.Kinds))
		}
		ks = append(ks, kind)
	}
	rules, err := readRules(*rename)
	if err != nil {
		return fail(stderr, "diff", err)
	}
	a, b, err := openPair(pos[0], pos[1])
	if err != nil {
		return fail(stderr, "diff", err)
	}
	defer a.Close()
	defer b.Close()
	d, err := verify.Diff(a, b, verify.Options{Rename: rules, Command: commandLine("diff", args), Progress: progressWriter(stderr)}, ks...)
	if err != nil {
		return fail(stderr, "diff", err)
	}
	if err := writeReport(*out, stdout, func(w io.Writer) error { return reports.WriteDiff(w, d, *format) }); err != nil {
		return fail(stderr, "diff", err)
	}
	if *out != "" {
		fmt.Fprintf(stdout, "spcheck diff: %s; report in %s\n", d.Summary(), *out)
	}
	if !d.Same() {
		return exitFailed
	}
	return exitOK
}

func containsKind(ks []trace.Kind, k trace.Kind) bool {
	for _, x := range ks {
		if x == k {
			return true
		}
	}
	return false
}
