package bugs

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/serving"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/ir"
	simrt "github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// VerdictError is Outcome.Verdict for a run the simulator refused (a kernel or collective
// error naming ranks and ops); VerdictClean for a run that verified.
const (
	VerdictError = "error"
	VerdictClean = "verified"
)

// Outcome is what spcheck saw when it ran a bug on a plan.
type Outcome struct {
	Bug     *Bug
	Plan    plan.Plan
	Command string // the one command that re-runs it

	// Training bugs.
	Report     *verify.Report // oracle vs simulator; nil when the simulator refused the run
	RunErr     *simrt.Error
	Trace      *trace.Trace       // the buggy run's trace (nil on a run error)
	Verdict    string             // of the first divergence, VerdictError or VerdictClean
	First      string             // its tensor; for a run error, the first traced tensor the failing op feeds
	Ranks      []int              // ranks whose pieces of First are wrong
	Feeds      string             // for a run error, the norm whose input could not be formed
	Signature  Signature          // the shape of the first divergence
	Diagnosed  *verify.Signature  // the verifier's signature of the first divergence (nil if none)
	Scales     map[string]float64 // Expect.Scaled tensors: the measured factor (NaN: not a multiple)
	scaleTols  map[string]float64 // the relative tolerance each was measured at (Signature.MultipleTol)
	Positions  []int              // sequence positions where First diverges (valid ones at Expect.ValidDepth)
	Recomputed []string           // activations whose recompute differs from their forward
	Detail     string             // one line

	// Serving bugs.
	Serving *serving.Report
}

// OnMinimalPlan reports whether the run is the one the catalogue's expectation is for: the
// bug's minimal plan, or its serving config with the bug on.
func (o *Outcome) OnMinimalPlan() bool {
	if o.Serving != nil {
		return o.Serving.Config.String() == o.Bug.Config().String()
	}
	return o.Plan.String() == o.Bug.MinimalPlan().String()
}

// Detected reports whether the run failed verification (or could not run).
func (o *Outcome) Detected() bool {
	if o.Serving != nil {
		return !o.Serving.OK()
	}
	return o.Verdict != VerdictClean
}

// Run runs bug b on p (a training plan; ignored for serving bugs, which run their Config) and
// classifies what the verifier sees.
func Run(b *Bug, p plan.Plan) (*Outcome, error) {
	if b.Domain == Serving {
		return RunServing(b, b.Config())
	}
	p.Bug = b.Name
	o := &Outcome{Bug: b, Plan: p, Command: ReproCommand(b, p)}
	run, err := pipeline.Run(p, b.Variant(), pipeline.Simulator{Recompute: true}, pipeline.Options{Verify: verify.Options{Command: o.Command}})
	if err != nil {
		return nil, err
	}
	if re, ok := run.RunErr.(*simrt.Error); ok {
		o.runError(run.Compiled, re)
		return o, nil
	}
	o.Recomputed, o.Trace, o.Report = run.Recomputed, run.Cand, run.Report
	o.classify()
	return o, nil
}

// GradientMD5s compares the MD5s of the loss and gradients of the correct run (the bug off, the
// same plan; A) with the buggy run's (B).
func (o *Outcome) GradientMD5s() (*verify.DiffReport, error) {
	if o.Trace == nil {
		return nil, fmt.Errorf("bugs: %s refused to run: no tensors to hash", o.Bug.Name)
	}
	q := o.Plan
	q.Bug = ""
	ok, err := pipeline.Execute(q, nil, pipeline.Simulator{})
	if err == nil {
		err = ok.RunErr
	}
	if err != nil {
		return nil, err
	}
	return verify.Diff(ok.Cand, o.Trace, verify.Options{})
}

// ReproCommand is the command that re-runs b on p.
func ReproCommand(b *Bug, p plan.Plan) string {
	if b.Domain == Serving {
		return "spcheck repro " + b.Name
	}
	p.Bug = ""
	return fmt.Sprintf("spcheck repro %s --plan '%s'", b.Name, p)
}

// runError names what a refused run was computing: the rank and op, the first traced tensor the
// failing op's result flows into and the first norm it feeds.
func (o *Outcome) runError(c *simulate.Compiled, e *simrt.Error) {
	o.RunErr, o.Verdict, o.Signature = e, VerdictError, SigRunError
	o.Detail = e.Error()
	if e.Kind != simrt.ErrKernel || len(e.Ranks) == 0 {
		return
	}
	prog := c.Programs[e.Ranks[0]]
	reach := map[string]bool{}
	for _, s := range prog.Ops[e.Op].Out {
		reach[s] = true
	}
	norm := ""
	for _, op := range prog.Ops[e.Op+1:] {
		if !slices.ContainsFunc(op.In, func(s string) bool { return reach[s] }) {
			continue
		}
		switch {
		case op.Op == ir.OpTrace && o.First == "":
			o.First = op.Trace.Name
		case op.Op == ir.OpTrace && op.In[0] == norm && o.Feeds == "":
			o.Feeds = op.Trace.Name
		case op.Op == ir.OpRMSNorm && norm == "":
			norm = op.Out[0]
		}
		for _, s := range op.Out {
			reach[s] = true
		}
	}
	// Which of a stage's TP ranks fails first depends on scheduling; what fails does not, so
	// the detail names the stage, the op and the computation, not the rank.
	op := prog.Ops[e.Op]
	why := strings.SplitN(e.Msg, "\n", 2)[0]
	why = strings.TrimPrefix(why, fmt.Sprintf("rank %d op %d %s: ", e.Ranks[0], e.Op, op.String()))
	o.Detail = fmt.Sprintf("stage pp=%d cannot compute %s", prog.Coord[simulate.AxisPP], orNone(o.First))
	if o.Feeds != "" {
		o.Detail += fmt.Sprintf(", the input of %s", o.Feeds)
	}
	o.Detail += fmt.Sprintf(": op %d %s: %s", e.Op, op.String(), why)
}

func orNone(s string) string {
	if s == "" {
		return "(nothing traced)"
	}
	return s
}

// classify reads the verifier's report: the first divergence and its signature, and the
// factors of the tensors the bug's expectation names.
func (o *Outcome) classify() {
	first := o.Report.First()
	if len(first) == 0 {
		o.Verdict, o.Signature = VerdictClean, ""
		if !o.Report.Verified() {
			o.Verdict = "failed (no numerical divergence)"
		}
		o.Detail = "every tensor within tolerance"
		if len(o.Recomputed) > 0 {
			o.Detail += "; recomputed activations differ from the forward: " + strings.Join(o.Recomputed, ", ")
		}
		return
	}
	res := first[0]
	o.Verdict, o.First, o.Ranks = string(res.Verdict), res.Name, res.Ranks
	o.Signature = SigDiverged
	if sig := res.Signature; sig != nil {
		o.Signature = Signature(sig.Kind)
		o.Diagnosed = sig
		valid := validAt(o.Plan, o.Bug.Expect.ValidDepth)
		for _, i := range sig.Positions {
			if valid(i) {
				o.Positions = append(o.Positions, i)
			}
		}
	}
	if len(o.Recomputed) > 0 {
		o.Signature = SigRecompute
	}
	if ex := o.Bug.Expect; len(ex.Scaled) > 0 {
		o.Scales, o.scaleTols = map[string]float64{}, map[string]float64{}
		for _, st := range ex.Scaled {
			o.Scales[st.Name] = math.NaN()
			for _, r := range o.Report.Results {
				if r.Name == st.Name && r.Signature != nil && r.Signature.Multiple {
					o.Scales[st.Name] = r.Signature.Factor
					o.scaleTols[st.Name] = r.Signature.MultipleTol
				}
			}
		}
	}
	o.Detail = o.describe(res)
}

// validAt says which positions of a row count at MTP depth k: i+k+1 < the end of i's
// sequence (the MTP loss of depth k has no target past it); every position when k = 0.
func validAt(p plan.Plan, k int) func(i int) bool {
	ends := nn.SeqEnds(p.CuSeqlens())
	return func(i int) bool { return k == 0 || i+k+1 < ends[i] }
}

// describe is the outcome in one line.
func (o *Outcome) describe(res *verify.Result) string {
	s := fmt.Sprintf("first divergence %s: %s", res.Name, res.Verdict)
	if len(res.Ranks) > 0 {
		s += fmt.Sprintf(" on ranks %v", res.Ranks)
	}
	switch {
	case o.Signature == SigRecompute:
		s += "; recomputed " + strings.Join(o.Recomputed, ", ") + " differ from the forward"
	case o.Signature == SigPositions && o.Bug.Expect.ValidDepth > 0:
		s += fmt.Sprintf("; wrong at positions %v (valid at depth %d)", o.Positions, o.Bug.Expect.ValidDepth)
	case res.Signature != nil && o.Signature != SigDiverged && o.Signature != SigReplicaMismatch: // the verdict says replica mismatch
		s += "; " + res.Signature.String()
	}
	for _, st := range o.Bug.Expect.Scaled {
		if c := o.Scales[st.Name]; !math.IsNaN(c) {
			s += fmt.Sprintf("; %s is %s its reference", st.Name, verify.FormatScale(c, st.Why))
		}
	}
	if n := len(o.Report.Roots()) - len(o.Report.First()); n > 0 {
		s += fmt.Sprintf("; %s of their own", verify.Plural(n, "later root"))
	}
	if n := o.Report.Consequences(); n > 0 {
		s += fmt.Sprintf("; %d later failures follow", n)
	}
	return s
}

// RunServing runs a serving bug on cfg (its Config, or that with Fixed applied) and reads the
// serving checks.
func RunServing(b *Bug, cfg serving.Config) (*Outcome, error) {
	rep, err := serving.Run(cfg)
	if err != nil {
		return nil, err
	}
	o := &Outcome{Bug: b, Command: ReproCommand(b, plan.Plan{}), Serving: &rep, Signature: SigServing}
	var cls []string
	for _, c := range rep.Classes() {
		cls = append(cls, string(c))
	}
	o.Verdict = VerdictClean
	if len(cls) > 0 {
		o.Verdict = strings.Join(cls, ", ")
	}
	o.Detail = servingDetail(rep)
	if o.Detected() {
		o.First, _, _ = strings.Cut(o.Detail, ";")
	}
	return o, nil
}

// servingDetail is a serving report's failures in one line.
func servingDetail(rep serving.Report) string {
	var parts []string
	if !rep.EmitOK() {
		var em []string
		for _, r := range rep.Emitters() {
			em = append(em, fmt.Sprintf("r%d", r))
		}
		parts = append(parts, "EmitOnce: "+rep.EmitVerdict()+" (emitters "+strings.Join(em, ",")+")")
	}
	for _, l := range rep.UnderPredicted() {
		parts = append(parts, fmt.Sprintf("LaunchPrediction: step %d DP%d predicted %d, actual %d", l.Step, l.DP, l.Predicted, l.Actual))
	}
	if len(rep.Skipped) > 0 {
		parts = append(parts, fmt.Sprintf("GateOnlyEmission: %d rank-steps skipped their state update", len(rep.Skipped)))
	}
	if len(rep.Replicas) > 0 {
		m := rep.Replicas[0]
		parts = append(parts, fmt.Sprintf("ReplicaIdentity: step %d r%d vs root r%d %s %s", m.Step, m.Rank, m.Root, m.Request, m.Field))
	}
	if len(parts) == 0 {
		return "every check passed"
	}
	return strings.Join(parts, "; ")
}

// Mismatches lists how the outcome differs from the bug's expected diagnosis (none: it matches).
func (o *Outcome) Mismatches() []string {
	ex := o.Bug.Expect
	var bad []string
	want := func(what, got, exp string) {
		if got != exp {
			bad = append(bad, fmt.Sprintf("%s %q, want %q", what, got, exp))
		}
	}
	if o.Serving != nil {
		var got []serving.Class
		got = append(got, o.Serving.Classes()...)
		if !slices.Equal(got, ex.Classes) {
			bad = append(bad, fmt.Sprintf("serving classes %v, want %v", got, ex.Classes))
		}
		return bad
	}
	want("verdict", o.Verdict, ex.Verdict)
	want("first divergence", o.First, ex.First)
	want("signature", string(o.Signature), string(ex.Signature))
	if ex.Feeds != "" {
		want("failing input of", o.Feeds, ex.Feeds)
	}
	if ex.Signature == SigScaled && o.Signature == SigScaled && len(ex.Scaled) > 0 && ex.Scaled[0].Name == ex.First {
		if o.Diagnosed.Scale != ex.Scaled[0].Factor {
			bad = append(bad, fmt.Sprintf("scale ×%g, want ×%g", o.Diagnosed.Scale, ex.Scaled[0].Factor))
		}
	}
	for _, s := range ex.Scaled {
		tol := max(verify.MultipleRelTol, o.scaleTols[s.Name])
		if got := o.Scales[s.Name]; math.IsNaN(got) || math.Abs(got-s.Factor) > tol*math.Abs(s.Factor) {
			bad = append(bad, fmt.Sprintf("%s is %v × its reference, want ×%g (%s)", s.Name, got, s.Factor, s.Why))
		}
	}
	if ex.Signature == SigPositions && !slices.Equal(o.Positions, ex.Positions) {
		bad = append(bad, fmt.Sprintf("positions %v, want %v", o.Positions, ex.Positions))
	}
	for _, name := range ex.Recomputed {
		if !slices.Contains(o.Recomputed, name) {
			bad = append(bad, fmt.Sprintf("recomputed %s agrees with its forward, want it to differ", name))
		}
	}
	return bad
}
