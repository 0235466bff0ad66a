package main

import (
	"io"

	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/trace"
)

func init() {
	register(&command{name: "inspect", summary: "list every tensor of a trace: rank, name, kind, shape, dtype, placement, MD5", run: runInspect})
}

func runInspect(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("inspect", "TRACE_DIR", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitBadInput
	}
	tr, err := trace.OpenDir(fs.Arg(0))
	if err != nil {
		return fail(stderr, "inspect", err)
	}
	defer tr.Close()
	if err := reports.Inspect(stdout, tr); err != nil {
		return fail(stderr, "inspect", err)
	}
	return exitOK
}
