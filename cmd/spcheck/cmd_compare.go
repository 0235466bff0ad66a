package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"

	"github.com/spcheck/spcheck/calibrate"
	"github.com/spcheck/spcheck/oracle"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

func init() {
	register(&command{name: "compare", summary: "compare a candidate trace with a reference: verdicts, first divergence, block diagnosis", run: runCompare})
}

func runCompare(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("compare", "REF_DIR CAND_DIR [flags]", stderr)
	tol := addTolFlags(fs, "relative tolerance: one number for every float dtype (1e-6), dtype=number pairs (bf16=2e-2,fp32=1e-5), or 'calibrate' (an oracle reference only: measure each tensor's noise by recomputing the plan split other ways, in its dtype); default: with an oracle reference, the noise of the plan's single-device run in the candidate's dtype (float64: per-dtype constants), see docs/tolerance.md")
	ref2 := fs.String("ref2", "", "a second, independent correct reference (e.g. the same single-device run with other kernels or a perturbed input): each tensor's tolerance is referenced to how far it lies from REF_DIR, see docs/tolerance.md")
	rename := fs.String("rename", "", "file of rules 'REGEX => REPLACEMENT' (optionally '@pp=1 …') mapping framework tensor names to logical names")
	format := reports.FormatFlag(fs, reports.ReportFormats)
	out := fs.String("out", "", "write the report to this file; stdout still gets the verdict, the first divergence with each root's one-line diagnosis, and the reproduce commands")
	allowMissing := fs.Bool("allow-missing", false, "report tensors present in only one trace without failing")
	all := fs.Bool("all", false, "list every tensor in text and md reports, identical ones included")
	seed001 := fs.Bool("seed001-layout", false, "text report: also print chunk diagnoses in the layout of PaddleFleet#589")
	step := fs.Int("step", -1, "compare training step N of multi-step dumps (DIR/step-NNNNNN/, as spcheck_dump writes them); default: the dump's only step")
	filter := fs.String("filter", "", "compare only the logical tensors whose name matches this regular expression")
	maxDiag := fs.Int("max-diagnosed", verify.DefaultMaxDiagnosed, "block-diagnose at most this many failing tensors (the first divergence always)")
	pos, code, done := parseInterspersed(fs, args)
	if done {
		return code
	}
	if len(pos) != 2 {
		fs.Usage()
		return exitBadInput
	}
	opt := verify.Options{AllowMissing: *allowMissing, MaxDiagnosed: *maxDiag, Command: commandLine("compare", args)}
	var err error
	if err = tol.apply(&opt, true); err != nil {
		return fail(stderr, "compare", err)
	}
	if opt.Rename, err = readRules(*rename); err != nil {
		return fail(stderr, "compare", err)
	}
	if *filter != "" {
		if opt.Filter, err = regexp.Compile(*filter); err != nil {
			return fail(stderr, "compare", fmt.Errorf("--filter: %w", err))
		}
	}
	for i := range pos {
		if pos[i], err = trace.StepDir(pos[i], *step); err != nil {
			return fail(stderr, "compare", err)
		}
	}
	opt.Progress = progressWriter(stderr)
	ref, cand, err := openPair(pos[0], pos[1])
	if err != nil {
		return fail(stderr, "compare", err)
	}
	defer ref.Close()
	defer cand.Close()
	switch {
	case tol.calibrate():
		if err = calibrateFor(ref, cand, &opt, stderr); err != nil {
			return fail(stderr, "compare", err)
		}
	case *ref2 != "":
		r2, err := noiseFromRef2(ref, *ref2, *step, &opt)
		if err != nil {
			return fail(stderr, "compare", err)
		}
		defer r2.Close()
	case len(opt.Tol) == 0:
		if err = oracleNoise(ref, cand, &opt, stderr); err != nil {
			return fail(stderr, "compare", err)
		}
	}
	rep, err := verify.Compare(ref, cand, opt)
	if err != nil {
		return fail(stderr, "compare", err)
	}
	if err := configMismatch(rep); err != nil {
		return fail(stderr, "compare", err)
	}
	render := func(w io.Writer) error {
		return reports.Write(w, rep, *format, reports.Options{All: *all, Seed001: *seed001})
	}
	if err := writeReport(*out, stdout, render); err != nil {
		return fail(stderr, "compare", err)
	}
	if *out != "" {
		if err := outSummary(stdout, rep, *format, *out); err != nil {
			return fail(stderr, "compare", err)
		}
	}
	if !rep.Verified() {
		return exitFailed
	}
	return exitOK
}

// refPlan is the plan of an oracle reference trace, in the candidate's dtype when the
// candidate records a plan; ok is false for any other reference.
func refPlan(ref, cand *trace.Trace) (p plan.Plan, ok bool, err error) {
	m := ref.Files[0].Meta
	if m.Producer != oracle.Producer || m.Plan == "" {
		return p, false, nil
	}
	if p, err = plan.Parse(m.Plan); err != nil {
		return p, false, fmt.Errorf("the reference's plan: %w", err)
	}
	if c, err := plan.Parse(cand.Files[0].Meta.Plan); err == nil {
		p.DType = c.DType
	}
	return p, true, nil
}

// calibrateFor measures per-tensor tolerances for an oracle reference trace: float64 rtols, or
// for a low-precision candidate the noise of the plan's recomputations in its dtype.
func calibrateFor(ref, cand *trace.Trace, opt *verify.Options, log io.Writer) error {
	p, ok, err := refPlan(ref, cand)
	if err != nil {
		return fmt.Errorf("--tol calibrate: %w", err)
	}
	if !ok {
		return fmt.Errorf("--tol calibrate recomputes the reference, so the reference must be an oracle trace with its plan (%s has producer %q)", ref.Dir, ref.Files[0].Meta.Producer)
	}
	res, err := calibrate.Calibrate(p)
	if err != nil {
		return err
	}
	name, worst := res.Worst()
	if res.Noise != nil {
		fmt.Fprintf(log, "calibrated %s noise from the single-device run and %d recomputations: worst %.3g (on %s); tolerance = %d × noise per element, %d × normwise\n",
			p.DType, len(res.Plans), worst, name, verify.NoiseElemMultiple, verify.NoiseNormMultiple)
		opt.Noise = res.Noise
		return nil
	}
	fmt.Fprintf(log, "calibrated float64 tolerances from %d recomputations: worst noise %.3g (on %s), tolerance = max(%d × noise, %.3g) per tensor\n",
		len(res.Plans), worst, name, calibrate.Safety, calibrate.Floor)
	opt.Calibrated = res.RTol
	return nil
}

// oracleNoise sets the default tolerance against an oracle reference: the noise of the plan's
// single-device run in the candidate's dtype (nothing for float64 or another reference).
func oracleNoise(ref, cand *trace.Trace, opt *verify.Options, log io.Writer) error {
	p, ok, err := refPlan(ref, cand)
	if err != nil || !ok || p.DType == tensor.F64 {
		return err
	}
	if *opt, err = pipeline.WithNoise(p, ref, *opt); err != nil {
		return err
	}
	fmt.Fprintf(log, "tolerance: each tensor's noise on the plan's single-device %s run (%d × per element, %d × normwise; docs/tolerance.md)\n",
		p.DType, verify.NoiseElemMultiple, verify.NoiseNormMultiple)
	return nil
}

// noiseFromRef2 opens the second reference (dir) and sets each tensor's noise to its deviation
// from the first; the caller closes the trace after the comparison.
func noiseFromRef2(ref *trace.Trace, dir string, step int, opt *verify.Options) (*trace.Trace, error) {
	dir, err := trace.StepDir(dir, step)
	if err != nil {
		return nil, fmt.Errorf("--ref2: %w", err)
	}
	ref2, err := trace.OpenDir(dir)
	if err != nil {
		return nil, fmt.Errorf("--ref2: %w", err)
	}
	if opt.Noise, err = verify.MeasureNoise(ref, ref2, *opt); err != nil {
		ref2.Close()
		return nil, fmt.Errorf("--ref2: %w", err)
	}
	opt.NoiseRun = ref2
	return ref2, nil
}

// outSummary is what stdout (a terminal, a CI log) gets when the report goes to a file: the
// verdict, each root's one-line diagnosis, the reproduce commands, and where the report is.
func outSummary(stdout io.Writer, rep *verify.Report, format reports.Format, path string) error {
	if err := reports.Summary(stdout, rep); err != nil {
		return err
	}
	_, err := fmt.Fprintf(stdout, "report (%s): %s\n", format, path)
	return err
}

func verdictWord(ok bool) string {
	if ok {
		return "VERIFIED"
	}
	return "FAILED"
}

// parseInterspersed parses flags given before, between or after the positional arguments
// (Go's flag package stops at the first positional one).
func parseInterspersed(fs *flag.FlagSet, args []string) (pos []string, code int, done bool) {
	for {
		if code, done := parseFlags(fs, args); done {
			return nil, code, true
		}
		rest := fs.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), 0, false // everything after -- is positional
		}
		if len(rest) == 0 {
			return pos, 0, false
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// commandLine is the shell command that re-runs this invocation.
func commandLine(name string, args []string) string {
	parts := []string{"spcheck", name}
	for _, a := range args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_./=,:+@%", r))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

func readRules(path string) (*verify.Rules, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--rename: %w", err)
	}
	defer f.Close()
	return verify.ParseRules(bufio.NewReader(f), path)
}

// openPair opens both trace directories, naming which one is bad.
func openPair(a, b string) (*trace.Trace, *trace.Trace, error) {
	ta, err := trace.OpenDir(a)
	if err != nil {
		return nil, nil, err
	}
	tb, err := trace.OpenDir(b)
	if err != nil {
		ta.Close()
		return nil, nil, err
	}
	return ta, tb, nil
}

// writeReport renders to the file at path, or to stdout when path is empty.
func writeReport(path string, stdout io.Writer, render func(io.Writer) error) error {
	if path == "" {
		return render(stdout)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	err = render(w)
	err = errors.Join(err, w.Flush(), f.Close())
	return err
}

// progressWriter is stderr when it is an interactive terminal outside CI, else nil: progress
// lines are for people watching, not for logs.
// startLine tells a terminal (w, from progressWriter) what a long run is about to do and the
// memory it needs at least, so that minutes without output are not mistaken for a hang.
func startLine(w io.Writer, cmd string, p plan.Plan, withReference bool) {
	need := pipeline.SimulatorMemory(p)
	what := "simulating"
	if withReference {
		need += pipeline.ReferenceMemory(p)
		what = "simulating, then the oracle, then comparing"
	}
	fmt.Fprintf(w, "spcheck %s: %s plan '%s' (%d ranks, at least %s of memory)…\n", cmd, what, p.Short(), p.World(), verify.FormatBytes(need))
}

func progressWriter(stderr io.Writer) io.Writer {
	f, ok := stderr.(*os.File)
	if !ok || os.Getenv("CI") != "" {
		return nil
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	return f
}
