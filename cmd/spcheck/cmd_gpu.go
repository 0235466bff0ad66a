package main

import (
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/cuda/gputraces"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/simulate"
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
		"compares the two. With --ref gpu the reference is instead the same model run unsplit in\n"+
		"float64 on one GPU (cuda/gputraces.ReferencePlan; DIR/ref/emit, DIR/ref/cuda), for models\n"+
		"too large for the CPU oracle. Either reference is compared with the noise of the plan's\n"+
		"single-device run in its dtype, measured on the CPU simulator, unless --tol is given\n"+
		"(pass --tol where the model is too large for the CPU). The plan's dtype is fp32, bf16\n"+
		"or fp64. Exit 0: every tensor within\n"+
		"tolerance; 1: some differ, or the executor failed (its message names the rank and op);\n"+
		"2: bad input.", stderr)
	execPath := fs.String("exec", "cuda/build/spexec", "the executor binary (make -C cuda)")
	work := fs.String("work", "", "working directory for the emitted plan and both traces (created)")
	gpus := fs.Int("gpus", 0, "GPUs to use (0: every visible one); more ranks than GPUs share them")
	timeout := fs.Float64("timeout", 120, "seconds after which a collective that never completes aborts the run")
	tol := addTolFlags(fs, "relative tolerance override (as compare --tol); default: the noise of the plan's correct single-device run in its dtype, see docs/tolerance.md")
	format := reports.FormatFlag(fs, reports.ReportFormats)
	refKind := fs.String("ref", "oracle", "the reference: oracle (the CPU float64 oracle) or gpu (the executor unsplit in float64)")
	dump := fs.String("dump", "", "record only the traced tensors whose names match these comma-separated globs (spexec --dump; both runs)")
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
	if *refKind != "oracle" && *refKind != "gpu" {
		return fail(stderr, "gpu", fmt.Errorf("--ref %q: want oracle or gpu", *refKind))
	}
	x := pipeline.CUDA{Exec: *execPath, Work: *work, GPUs: *gpus, Timeout: *timeout, Extra: extra, Log: stderr}
	for _, g := range strings.Split(*dump, ",") {
		if g != "" {
			x.Dump = append(x.Dump, g)
		}
	}
	opt := pipeline.Options{RefDir: x.RefDir()}
	if err = tol.apply(&opt.Verify, false); err != nil {
		return fail(stderr, "gpu", err)
	}
	var o *pipeline.Outcome
	if *refKind == "gpu" {
		o, err = gpuReferenceRun(p, v, x, opt.Verify)
	} else {
		opt.Verify.Command = fmt.Sprintf("spcheck compare %s %s", x.RefDir(), x.CandDir())
		o, err = pipeline.Run(p, v, x, opt)
	}
	if err != nil {
		return fail(stderr, "gpu", err)
	}
	defer o.Close()
	if o.RunErr != nil {
		fmt.Fprintf(stdout, "spcheck gpu: FAILED: %v\n  --plan '%s'\n", o.RunErr, p.Short())
		return exitFailed
	}
	rep := o.Report
	if err := reports.Write(stdout, rep, *format, reports.Options{}); err != nil {
		return fail(stderr, "gpu", err)
	}
	worst, name := worstRelErr(rep)
	fmt.Fprintf(stdout, "spcheck gpu: %s: %d ranks, executor %.2f s, max normwise rel err vs %s %.3g (%s)\n  --plan '%s'\n",
		verdictWord(rep.Verified()), len(o.Cand.Files), o.Wall.Seconds(), *refKind, worst, name, p.Short())
	if !rep.Verified() {
		return exitFailed
	}
	return exitOK
}

// gpuReferenceRun runs p on the GPUs (x), then its float64 reference plan unsplit on one GPU
// (x.Work/ref), and compares the two traces.
func gpuReferenceRun(p plan.Plan, v *simulate.Variant, x pipeline.CUDA, opt verify.Options) (*pipeline.Outcome, error) {
	o, err := pipeline.Execute(p, v, x)
	if err != nil || o.RunErr != nil {
		return o, err
	}
	rx := x
	rx.Work, rx.GPUs = filepath.Join(x.Work, "ref"), 1
	r, err := pipeline.Execute(gputraces.ReferencePlan(p), nil, rx)
	if err == nil && r.RunErr != nil {
		err = fmt.Errorf("the GPU reference run: %w", r.RunErr)
	}
	if err != nil {
		o.Close()
		return nil, err
	}
	o.Ref = r.Cand
	opt.Command = fmt.Sprintf("spcheck compare %s %s", rx.CandDir(), x.CandDir())
	if opt, err = pipeline.WithNoise(p, o.Ref, opt); err == nil {
		o.Report, err = verify.Compare(o.Ref, o.Cand, opt)
	}
	if err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
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
