package main

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/verify"
)

func init() {
	register(&command{name: "gpu", summary: "run a plan on real GPUs with cuda/'s executor and verify it against the oracle", run: runGPU})
}

func runGPU(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("gpu", "[plan flags] --exec cuda/build/spexec --work DIR [--gpus N]\n\n"+
		"In one step: compiles the plan and emits its per-rank programs and starting tensors\n"+
		"(DIR/emit, as 'spcheck plan --emit'), runs them on the visible GPUs with the CUDA/NCCL\n"+
		"executor (DIR/cuda: one trace file per rank), writes the oracle's trace (DIR/oracle) and\n"+
		"compares the two. The plan's dtype must be fp32 or bf16. Exit 0: every tensor within\n"+
		"tolerance; 1: some differ, or the executor failed (its message names the rank and op);\n"+
		"2: bad input.", stderr)
	execPath := fs.String("exec", "cuda/build/spexec", "the executor binary (make -C cuda)")
	work := fs.String("work", "", "working directory for the emitted plan and both traces (created)")
	gpus := fs.Int("gpus", 0, "GPUs to use (0: every visible one); more ranks than GPUs share them")
	timeout := fs.Float64("timeout", 120, "seconds after which a collective that never completes aborts the run")
	tol := fs.String("tol", "", "relative tolerance override (as compare --tol); default: the noise of the plan's correct single-device run in its dtype, see docs/tolerance.md")
	format := reports.FormatFlag(fs, reports.ReportFormats)
	var extra multiFlag
	fs.Var(&extra, "extra", "KEY=VALUE recorded in every trace file's Meta.Extra (repeatable)")
	build := planFlags(fs)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		return fail(stderr, "gpu", fmt.Errorf("unexpected argument %q (plan keys are flags: --tp 2 or --plan 'tp=2')", fs.Arg(0)))
	}
	if *work == "" {
		return fail(stderr, "gpu", errors.New("--work DIR is required"))
	}
	if _, err := exec.LookPath(*execPath); err != nil {
		return fail(stderr, "gpu", fmt.Errorf("--exec %s: no executor to run (build it with make -C cuda, or point --exec at it): %w", *execPath, err))
	}
	p, err := build()
	if err != nil {
		return fail(stderr, "gpu", err)
	}
	v, err := bugs.VariantOf(p)
	if err != nil {
		return fail(stderr, "gpu", err)
	}
	x := pipeline.CUDA{Exec: *execPath, Work: *work, GPUs: *gpus, Timeout: *timeout, Extra: extra, Log: stderr}
	opt := pipeline.Options{RefDir: x.RefDir()}
	opt.Verify.Command = fmt.Sprintf("spcheck compare %s %s", x.RefDir(), x.CandDir())
	if opt.Verify.Tol, err = verify.ParseTolerances(*tol); err != nil {
		return fail(stderr, "gpu", err)
	}
	o, err := pipeline.Run(p, v, x, opt)
	if err != nil {
		return fail(stderr, "gpu", err)
	}
	defer o.Close()
	if o.RunErr != nil {
		fmt.Fprintf(stdout, "spcheck gpu: FAILED: %v\n  --plan '%s'\n", o.RunErr, p)
		return exitFailed
	}
	rep := o.Report
	if err := reports.Write(stdout, rep, *format, reports.Options{}); err != nil {
		return fail(stderr, "gpu", err)
	}
	worst, name := worstRelErr(rep)
	fmt.Fprintf(stdout, "spcheck gpu: %s: %d ranks, executor %.2f s, max normwise rel err vs oracle %.3g (%s)\n  --plan '%s'\n",
		verdictWord(rep.Verified()), len(o.Cand.Files), o.Wall.Seconds(), worst, name, p)
	if !rep.Verified() {
		return exitFailed
	}
	return exitOK
}

// worstRelErr is the largest normwise relative error ‖cand − ref‖/‖ref‖ over the compared
// tensors, and the tensor it belongs to.
func worstRelErr(rep *verify.Report) (float64, string) {
	worst, name := 0.0, "-"
	for _, r := range rep.Results {
		if r.RefDType != 0 && r.CandDType != 0 && r.RMSRel > worst {
			worst, name = r.RMSRel, r.Name
		}
	}
	return worst, name
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string { return strings.Join(*m, ",") }

func (m *multiFlag) Set(s string) error {
	if !strings.Contains(s, "=") {
		return fmt.Errorf("want KEY=VALUE, got %q", s)
	}
	*m = append(*m, s)
	return nil
}
