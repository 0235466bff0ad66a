package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spcheck/spcheck/oracle"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

func init() {
	register(&command{name: "oracle", summary: "write the single-device float64 reference trace of a plan's model", run: runOracle})
}

func runOracle(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("oracle", "[plan flags] --out DIR\n\n"+
		"Runs the reference model (oracle) of the plan's model keys and writes its trace, every input,\n"+
		"parameter, activation, gradient and loss, as DIR/rank-00000.safetensors (world 1, tensors in\n"+
		"the plan's dtype, inputs as I64). The parallel keys (tp, pp, dp, sp, partial_p2p,\n"+
		"microbatches, schedule) and bug are validated and recorded in the trace's plan string but do\n"+
		"not change the oracle, which always runs on one device.", stderr)
	out := fs.String("out", "", "directory to write the trace into (created if missing)")
	build := planFlags(fs)
	buildDump := dumpFlags(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		return fail(stderr, "oracle", fmt.Errorf("unexpected argument %q (plan keys are flags: --tp 2 or --plan 'tp=2')", fs.Arg(0)))
	}
	if *out == "" {
		return fail(stderr, "oracle", errors.New("--out DIR is required"))
	}
	p, err := build()
	if err != nil {
		return fail(stderr, "oracle", err)
	}
	dump, err := buildDump()
	if err != nil {
		return fail(stderr, "oracle", err)
	}
	if err := oracle.WriteTraceDump(*out, p, dump); err != nil {
		return fail(stderr, "oracle", err)
	}
	tr, err := trace.OpenDir(*out)
	if err != nil {
		return fail(stderr, "oracle", err)
	}
	defer tr.Close()
	f := tr.Files[0]
	fmt.Fprintf(stdout, "wrote %s: %d tensors, plan '%s'\n", filepath.Join(*out, trace.FileName(0)), len(f.Entries), p.Short())
	if dump != nil {
		fmt.Fprintf(stdout, "fingerprinted: %d of %d tensors (%s stored)\n", fingerprints(tr), len(f.Entries), verify.FormatBytes(storedBytes(tr)))
	}
	for _, e := range f.Entries {
		if e.Meta.Kind == trace.Loss && !e.IsFingerprint() {
			t, err := f.Tensor(e)
			if err != nil {
				return fail(stderr, "oracle", err)
			}
			fmt.Fprintf(stdout, "  %-14s %.12g\n", e.Meta.Name, t.Data[0])
		}
	}
	return exitOK
}
