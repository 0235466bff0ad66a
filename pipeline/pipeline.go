package pipeline

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/spcheck/spcheck/oracle"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
	simrt "github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// Options tune a run.
type Options struct {
	// Verify tunes the comparison; an empty Verify.Command takes the executor's Command.
	Verify verify.Options
	// RefDir, if set, is where the oracle's reference trace is written and read back from
	// (so the comparison can be re-run with spcheck compare); otherwise it stays in memory.
	RefDir string
	// RefDump, when set, stores the reference's tensors as fingerprints as it says
	// (trace.Dump); nil stores them in full.
	RefDump *trace.Dump
}

// Outcome is what a run gave.
type Outcome struct {
	Plan    plan.Plan
	Variant *simulate.Variant // nil for a correct plan
	Command string            // the one command that reproduces the run
	// Compiled holds the per-rank programs (nil for a trace directory).
	Compiled *simulate.Compiled
	// RunErr is the executor's refusal: a *simrt.Error naming ranks and ops for the simulator
	// (a shape error, a mismatched collective or hand-off), the executor process's failure
	// for the GPUs. The run then has no candidate and no report.
	RunErr error
	Ref    *trace.Trace
	Cand   *trace.Trace
	Report *verify.Report // nil when RunErr is set or the outcome is Execute's
	// The simulator's statistics and the activations whose recompute differs bitwise from
	// their forward (Simulator.Recompute).
	Stats      *simrt.Stats
	Recomputed []string
	Wall       time.Duration // the executor's wall time
}

// Close releases the traces that were read from files.
func (o *Outcome) Close() {
	for _, t := range []*trace.Trace{o.Ref, o.Cand} {
		if t != nil {
			t.Close()
		}
	}
}

// Executor runs a plan's programs and yields the candidate trace: Simulator, CUDA or TraceDir.
type Executor interface {
	// Command is the command line that re-runs p on this executor and compares it.
	Command(p plan.Plan) string
	execute(o *Outcome) error
}

// Run executes p (with its bug variant v, nil for none) on ex, computes the oracle's
// reference and compares the two; a low-precision plan is judged against the noise of its
// single-device run (Noise) unless opt.Verify carries noise scales or tolerance overrides. The error is for bad input (an invalid plan, an unreadable
// trace); a run the executor refuses is Outcome.RunErr, with no report.
func Run(p plan.Plan, v *simulate.Variant, ex Executor, opt Options) (*Outcome, error) {
	// Refuse what cannot fit before the executor runs, not after.
	if _, sim := ex.(Simulator); sim {
		if err := CheckMemory(p, true); err != nil {
			return nil, err
		}
	} else if err := oracle.CheckMemory(p, opt.RefDir == ""); err != nil {
		return nil, err
	}
	o, err := Execute(p, v, ex)
	if err != nil || o.RunErr != nil {
		return o, err
	}
	if o.Ref, err = reference(p, opt.RefDir, opt.RefDump); err != nil {
		o.Close()
		return nil, err
	}
	vo := opt.Verify
	if vo.Command == "" {
		vo.Command = o.Command
	}
	if vo, err = WithNoise(p, o.Ref, vo); err != nil {
		o.Close()
		return nil, err
	}
	if o.Report, err = verify.Compare(o.Ref, o.Cand, vo); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

// Verify runs p (with its bug variant v) on the simulator and compares it with the oracle, for
// callers that need only the report: a run the simulator refuses is an error here.
func Verify(p plan.Plan, v *simulate.Variant, opt verify.Options) (*verify.Report, error) {
	o, err := Run(p, v, Simulator{}, Options{Verify: opt})
	if err != nil {
		return nil, err
	}
	if o.RunErr != nil {
		return nil, o.RunErr
	}
	return o.Report, nil
}

// Execute runs p (with its bug variant v) on ex and returns the candidate, without a reference.
func Execute(p plan.Plan, v *simulate.Variant, ex Executor) (*Outcome, error) {
	o := &Outcome{Plan: p, Variant: v, Command: ex.Command(p)}
	if err := ex.execute(o); err != nil {
		o.Close()
		return nil, err
	}
	return o, nil
}

// VerifyCommand is the command that re-runs p on the simulator against the oracle.
func VerifyCommand(p plan.Plan) string { return fmt.Sprintf("spcheck verify --plan '%s'", p) }

// Reference runs the oracle on p's model and returns its reference trace in memory, exactly
// as oracle.WriteTrace writes it (inputs as I64, the rest in the plan's dtype).
func Reference(p plan.Plan) (*trace.Trace, error) { return ReferenceDump(p, nil) }

// ReferenceDump is Reference storing the tensors as d says (fingerprints; nil: in full).
func ReferenceDump(p plan.Plan, d *trace.Dump) (*trace.Trace, error) {
	if err := oracle.CheckMemory(p, true); err != nil {
		return nil, err
	}
	res, err := oracle.Run(p.Model)
	if err != nil {
		return nil, err
	}
	w, err := oracle.TraceWriterDump(p, res, d)
	if err != nil {
		return nil, err
	}
	f, err := w.File(trace.FileName(0))
	if err != nil {
		return nil, err
	}
	return trace.New(oracle.Producer, []*trace.File{f})
}

// reference is ReferenceDump, or the trace oracle.WriteTraceDump writes into dir.
func reference(p plan.Plan, dir string, d *trace.Dump) (*trace.Trace, error) {
	if dir == "" {
		return ReferenceDump(p, d)
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	if err := oracle.WriteTraceDump(dir, p, d); err != nil {
		return nil, err
	}
	return trace.OpenDir(dir)
}

// compile compiles o's plan with its variant.
func (o *Outcome) compile() (err error) {
	o.Compiled, err = simulate.Compile(o.Plan, o.Variant)
	return err
}

// Simulator runs the programs on CPU ranks (package simulate's runtime).
type Simulator struct {
	// Out, if set, is a directory the per-rank trace files are written to (and read back
	// from); otherwise the trace stays in memory.
	Out string
	// Recompute traces every recomputed activation a second time and reports those whose
	// recompute differs from their forward (Outcome.Recomputed), then drops the probes.
	Recompute bool
	// Unchecked runs the compiled programs without validating them again
	// (simrt.RunUnchecked): the fuzzer's fast path, whose tests check that compiled programs
	// validate.
	Unchecked bool
	// Dump, when set, stores the ranks' tensors as fingerprints as it says (trace.Dump).
	Dump *trace.Dump
}

// Command is VerifyCommand.
func (Simulator) Command(p plan.Plan) string { return VerifyCommand(p) }

func (s Simulator) execute(o *Outcome) error {
	if err := CheckMemory(o.Plan, false); err != nil {
		return err
	}
	if err := o.compile(); err != nil {
		return err
	}
	c := o.Compiled
	c.Dump = s.Dump
	if s.Recompute {
		c.TraceRecomputed()
	}
	start := time.Now()
	run := simrt.RunIn
	if s.Unchecked {
		run = simrt.RunUnchecked
	}
	res, err := run(o.Plan.DType, c.Programs, c.Init)
	o.Wall = time.Since(start)
	var re *simrt.Error
	if errors.As(err, &re) && re.Kind != simrt.ErrProgram {
		o.RunErr = re
		return nil
	}
	if err != nil {
		return err
	}
	o.Stats = &res.Stats
	if s.Recompute {
		o.Recomputed = simulate.SplitRecomputed(res)
	}
	if s.Out == "" {
		o.Cand, err = c.Trace(res)
		return err
	}
	files, err := c.TraceFiles(res)
	if err != nil {
		return err
	}
	if err := simulate.WriteTraceDir(s.Out, files); err != nil {
		return err
	}
	o.Cand, err = trace.OpenDir(s.Out)
	return err
}

// CUDA runs the programs on the visible GPUs with cuda/'s executor binary: the compiled plan
// is emitted into Work/emit, the executor writes one trace file per rank into Work/cuda.
type CUDA struct {
	Exec    string   // the executor binary (make -C cuda builds cuda/build/spexec)
	Work    string   // working directory (created)
	GPUs    int      // GPUs to use (0: every visible one)
	Timeout float64  // seconds after which a collective that never completes aborts the run
	Extra   []string // KEY=VALUE pairs recorded in every trace file's Meta.Extra
	Dump    []string // if set, record only the traced tensors whose names match one of these globs
	Log     io.Writer
}

// EmitDir, CandDir and RefDir are where a CUDA run keeps the emitted programs, the GPUs' trace
// and (by the CLI's convention) the oracle's.
func (x CUDA) EmitDir() string { return filepath.Join(x.Work, "emit") }
func (x CUDA) CandDir() string { return filepath.Join(x.Work, "cuda") }
func (x CUDA) RefDir() string  { return filepath.Join(x.Work, "oracle") }

// Command re-runs the plan on the GPUs.
func (x CUDA) Command(p plan.Plan) string {
	return fmt.Sprintf("spcheck gpu --plan '%s' --exec %s --work %s", p, x.Exec, x.Work)
}

func (x CUDA) execute(o *Outcome) (err error) {
	// The executor generates the parameters itself: they are described, never materialised.
	if o.Compiled, err = simulate.CompileGenerated(o.Plan, o.Variant); err != nil {
		return err
	}
	for _, d := range []string{x.EmitDir(), x.CandDir()} {
		if err := os.RemoveAll(d); err != nil {
			return err
		}
	}
	if err := o.Compiled.WriteDir(x.EmitDir()); err != nil {
		return err
	}
	args := []string{"--emit", x.EmitDir(), "--out", x.CandDir(), "--timeout", fmt.Sprint(x.Timeout)}
	if x.GPUs > 0 {
		args = append(args, "--gpus", fmt.Sprint(x.GPUs))
	}
	for _, kv := range x.Extra {
		args = append(args, "--extra", kv)
	}
	for _, g := range x.Dump {
		args = append(args, "--dump", g)
	}
	cmd := exec.Command(x.Exec, args...)
	cmd.Stdout, cmd.Stderr = x.Log, x.Log
	start := time.Now()
	err = cmd.Run()
	o.Wall = time.Since(start)
	if err != nil {
		o.RunErr = fmt.Errorf("the executor failed (%v) after %.2f s", err, o.Wall.Seconds())
		return nil
	}
	o.Cand, err = trace.OpenDir(x.CandDir())
	return err
}

// TraceDir is a candidate trace written earlier (by any producer) into a directory.
type TraceDir string

// Command writes the reference and compares the directory with it.
func (d TraceDir) Command(p plan.Plan) string {
	return fmt.Sprintf("spcheck oracle --plan '%s' --out ref && spcheck compare ref %s", p, string(d))
}

func (d TraceDir) execute(o *Outcome) (err error) {
	o.Cand, err = trace.OpenDir(string(d))
	return err
}
