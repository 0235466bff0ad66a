package main

import (
	"fmt"
	"github.com/spcheck/spcheck/bugs"
	"io"

	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/simulate"
)

func init() {
	register(&command{name: "plan", summary: "compile a parallel plan into per-rank programs: summary, one rank's ops, or --emit DIR", run: runPlan})
}

func runPlan(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("plan", "[plan flags] [--rank N] [--emit DIR]\n\n"+
		"Compiles the plan into one program per rank (docs/ir.md) and prints a per-rank summary.\n"+
		"--rank N prints rank N's ops instead; --emit DIR writes every rank's program as JSON\n"+
		"(DIR/programs/rank-NNNNN.json) and its starting tensors — parameter shards and micro-batch\n"+
		"inputs — as safetensors (DIR/init/rank-NNNNN.safetensors), which cuda/ executes.", stderr)
	emit := fs.String("emit", "", "write the programs and starting tensors into this directory")
	rank := fs.Int("rank", -1, "print this rank's program, one op per line")
	build := planFlags(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		return fail(stderr, "plan", fmt.Errorf("unexpected argument %q (plan keys are flags: --tp 2 or --plan 'tp=2')", fs.Arg(0)))
	}
	p, err := build()
	if err != nil {
		return fail(stderr, "plan", err)
	}
	v, err := bugs.VariantOf(p)
	if err != nil {
		return fail(stderr, "plan", err)
	}
	c, err := simulate.CompileGenerated(p, v) // parameters are described, never materialised
	if err != nil {
		return fail(stderr, "plan", err)
	}
	if *rank >= len(c.Programs) {
		return fail(stderr, "plan", fmt.Errorf("--rank %d: the world has %d ranks", *rank, len(c.Programs)))
	}
	if err := reports.Plan(stdout, c, *rank); err != nil {
		return fail(stderr, "plan", err)
	}
	if *emit != "" {
		if err := c.WriteDir(*emit); err != nil {
			return fail(stderr, "plan", err)
		}
		fmt.Fprintf(stdout, "wrote %d programs to %s/%s, their generated parameters to %s/%s and their other starting tensors to %s/%s\n",
			len(c.Programs), *emit, simulate.ProgramsDir, *emit, simulate.GeneratedDir, *emit, simulate.InitDir)
	}
	return exitOK
}
