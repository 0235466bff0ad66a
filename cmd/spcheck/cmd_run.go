package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

func init() {
	register(&command{name: "run", summary: "simulate a parallel plan on CPU ranks and write its per-rank trace", run: runRun})
}

func runRun(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("run", "[plan flags] --out DIR\n\n"+
		"Compiles the plan into per-rank programs, runs them on CPU ranks (one goroutine each, NCCL\n"+
		"semantics) and writes one trace file per rank into DIR, every tensor with its placement, so\n"+
		"that 'spcheck compare ORACLE_DIR DIR' reassembles and checks it. A mismatched collective or\n"+
		"pipeline hand-off is an error naming the ranks, ops and groups (exit 2).", stderr)
	out := fs.String("out", "", "directory to write the trace into (created if missing)")
	build := planFlags(fs)
	buildDump := dumpFlags(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		return fail(stderr, "run", fmt.Errorf("unexpected argument %q (plan keys are flags: --tp 2 or --plan 'tp=2')", fs.Arg(0)))
	}
	if *out == "" {
		return fail(stderr, "run", errors.New("--out DIR is required"))
	}
	p, err := build()
	if err != nil {
		return fail(stderr, "run", err)
	}
	dump, err := buildDump()
	if err != nil {
		return fail(stderr, "run", err)
	}
	v, err := bugs.VariantOf(p)
	if err != nil {
		return fail(stderr, "run", err)
	}
	if w := progressWriter(stderr); w != nil {
		startLine(w, "run", p, false)
	}
	o, err := pipeline.Execute(p, v, pipeline.Simulator{Out: *out, Dump: dump})
	if err == nil {
		err = o.RunErr
	}
	if err != nil {
		return fail(stderr, "run", err)
	}
	defer o.Close()
	tr, st := o.Cand, o.Stats
	entries := 0
	for _, f := range tr.Files {
		entries += len(f.Entries)
	}
	fmt.Fprintf(stdout, "--plan '%s'\n%s\n", p.Short(), o.Compiled.Describe())
	fmt.Fprintf(stdout, "wrote %s: %d rank files, %d tensors; %d local ops, %d collectives, %d sends, %s moved\n",
		*out, len(tr.Files), entries, st.LocalOps, st.Collectives, st.Transfers, verify.FormatBytes(st.CommBytes))
	if dump != nil {
		fmt.Fprintf(stdout, "fingerprinted: %d of %d tensors (%s stored)\n", fingerprints(tr), entries, verify.FormatBytes(storedBytes(tr)))
		return exitOK
	}
	logical, err := verify.Assemble(tr)
	if err != nil {
		return fail(stderr, "run", err)
	}
	for _, l := range logical {
		if l.Kind == trace.Loss {
			fmt.Fprintf(stdout, "  %-14s %.12g\n", l.Name, l.Dense().Data[0])
		}
	}
	return exitOK
}
