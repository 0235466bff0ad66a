package verify

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Options tune a comparison. The zero value compares with the default tolerances.
type Options struct {
	// Tol overrides the relative tolerance of some dtypes (the --tol flag).
	Tol Tolerances
	// Calibrated gives measured float64 tolerances per logical name (package calibrate, the
	// --tol calibrate flag). They apply to float64 tensors that Tol does not override; other
	// dtypes keep their constants, which their own rounding dominates.
	Calibrated map[string]float64
	// Noise gives the noise of correct low-precision executions per logical name (MeasureNoise:
	// a single-device run in the candidate's dtype against the float64 oracle, or a second
	// independent reference). fp32, bf16 and fp16 tensors with an entry are judged against it
	// (noiseTol) unless Tol overrides their dtype.
	Noise NoiseScales
	// NoiseRun, when set, is the correct execution Noise was measured on (or the second
	// reference). Per-rank bias (RankBias) then measures each shard's error in units of this
	// run's error on the same region, so that shards holding different data stay comparable.
	NoiseRun *trace.Trace
	// Depth gives a logical tensor's reduction depth where the caller knows it (e.g. the
	// contraction length of the matmul that produced it); default tolerances scale by √depth.
	Depth func(name string) int
	// Rename maps framework names to logical names in both traces (the --rename file).
	Rename *Rules
	// Filter, when set, keeps only the logical tensors (after renaming) whose name it matches
	// (the --filter flag); the first divergence is then the first among them.
	Filter *regexp.Regexp
	// TolRules set the tolerance of the tensors whose names they match, first match first
	// (the repeatable --tol 'REGEX=rtol' flag; see TolRule).
	TolRules []TolRule
	// Ignore leaves out the tensors whose names (after renaming and Filter) one of these
	// matches (the repeatable --ignore flag); the report lists them (Report.Ignored).
	Ignore []*regexp.Regexp
	// AllowMissing lists tensors present in only one trace without failing on them.
	AllowMissing bool
	// MaxDiagnosed bounds how many failing tensors get a block diagnosis, earliest first
	// (0 = DefaultMaxDiagnosed). The first divergence is always diagnosed.
	MaxDiagnosed int
	// Progress, when set, receives a progress line updated in place during long comparisons.
	// The CLI sets it only when stderr is a terminal, so CI logs stay clean.
	Progress io.Writer
	// Command is the command line that reproduces this comparison; reports print it with
	// any failure.
	Command string
	// Workers bounds the goroutines used (0 = GOMAXPROCS). Small traces always use one.
	Workers int
	// SkipHashes leaves RefMD5 and CandMD5 empty, for callers that need only the verdicts
	// (property sweeps, where MD5 is ~40% of a tiny comparison). Verdicts do not change:
	// "identical" compares the bytes themselves.
	SkipHashes bool
}

// DefaultMaxDiagnosed is how many failing tensors get a block diagnosis by default: past the
// first few, failures are consequences and their tables add length, not insight.
const DefaultMaxDiagnosed = 16

// parallelMin is the stored size of both traces below which Compare runs on the calling
// goroutine: for the simulator's kilobyte traces a worker pool costs more than it saves.
var parallelMin int64 = 8 << 20

// md5SplitMin is the tensor size above which the candidate's MD5 is taken on its own goroutine
// while the reference's is taken on the worker's (MD5 runs ~0.7 GB/s per core and is sequential).
const md5SplitMin = 4 << 20

// TraceInfo describes one side of a comparison.
type TraceInfo struct {
	Dir      string
	World    int
	Mesh     string
	Producer string
	// ProducerVersion is the version of the program that wrote the trace (trace.Meta), if recorded.
	ProducerVersion string
	Plan            string
	Seed            uint64
	Extra           map[string]string
	Tensors         int   // logical tensors
	Bytes           int64 // stored tensor bytes over all ranks
}

// Result is the comparison of one logical tensor.
type Result struct {
	Name      string
	Kind      trace.Kind
	Order     int
	Verdict   Verdict
	Role      Role // for numerical failures: the first divergence or a consequence of it
	RefShape  []int
	CandShape []int
	RefDType  tensor.DType // 0 when the reference lacks the tensor
	CandDType tensor.DType // 0 when the candidate lacks it
	RefPlace  string
	CandPlace string
	RefMD5    string
	CandMD5   string
	RTol      float64 // the relative tolerance applied
	TolRule   string  // the --tol rule (Options.TolRules) that set RTol; "" if none
	Metrics
	Ranks        []int // candidate ranks whose pieces are outside tolerance (diagnosed tensors)
	RefReplicas  []Disagreement
	CandReplicas []Disagreement
	Diagnosis    *Diagnosis
	Signature    *Signature // the shape of the divergence (diagnosed tensors)
	// Heatmap is the element error of a root (a diagnosed failure that is no consequence) as a
	// bounded 2-D picture (heatmap.go), for the HTML report; nil for other tensors.
	Heatmap *Heatmap
	// Explanation is the mechanism that explains the divergence, in one sentence (diagnosed
	// tensors, shape mismatches included).
	Explanation *Explanation
	Note        string
	// Fingerprint is set when a side was stored as fingerprints: the tensor was judged on them
	// (fingerprint.go), and has no block diagnosis.
	Fingerprint *FingerprintCheck

	ref, cand *layout
}

// Region prints the bounding box of the elements outside tolerance, e.g. "[2:4, 0:2]"; "" if none.
func (r *Result) Region() string {
	if r.Lo == nil {
		return ""
	}
	return regionString(r.Lo, r.Hi)
}

// Report is the outcome of comparing two traces.
type Report struct {
	Ref, Cand    TraceInfo
	Results      []*Result // by execution order, then name
	Command      string
	AllowMissing bool
	Tol          Tolerances // overrides in effect
	Undiagnosed  int        // failing tensors past MaxDiagnosed, left without a block diagnosis
	// Rules records each --tol and --ignore rule and how many tensors it applied to; Ignored
	// lists the tensors the --ignore rules left out.
	Rules   []RuleUse
	Ignored []IgnoredTensor
	// Bias lists the shards of low-precision tensors whose error is systematically larger than
	// their peers' (RankBias), failing or not: a finding, not a verdict.
	Bias []RankBias
}

// Verified reports whether every tensor is identical or close (tensors in only one trace pass
// when AllowMissing was set).
func (r *Report) Verified() bool {
	for _, res := range r.Results {
		if r.Failed(res) {
			return false
		}
	}
	return true
}

// Failed reports whether res counts against verification.
func (r *Report) Failed(res *Result) bool {
	if res.Verdict == Missing || res.Verdict == Extra {
		return !r.AllowMissing
	}
	return !res.Verdict.Passed()
}

// Failures is the number of tensors that fail (Failed).
func (r *Report) Failures() int {
	n := 0
	for _, res := range r.Results {
		if r.Failed(res) {
			n++
		}
	}
	return n
}

// Count is the number of tensors with verdict v.
func (r *Report) Count(v Verdict) int {
	n := 0
	for _, res := range r.Results {
		if res.Verdict == v {
			n++
		}
	}
	return n
}

// First returns the first divergence: the numerical failures at the earliest execution order.
func (r *Report) First() []*Result {
	var out []*Result
	for _, res := range r.Results {
		if res.Role == Root {
			out = append(out, res)
		}
	}
	return out
}

// Consequences counts the numerical failures after the first divergence.
func (r *Report) Consequences() int {
	n := 0
	for _, res := range r.Results {
		if res.Role == Consequence {
			n++
		}
	}
	return n
}

// Reproduce lists what re-runs this comparison: the command, then each trace's plan and seed.
func (r *Report) Reproduce() []string {
	var out []string
	if r.Command != "" {
		out = append(out, r.Command)
	}
	for _, side := range []struct {
		name string
		info TraceInfo
	}{{"reference", r.Ref}, {"candidate", r.Cand}} {
		if side.info.Plan == "" && side.info.Seed == 0 {
			continue
		}
		s := fmt.Sprintf("%s (%s): plan '%s', seed %d", side.name, orDash(side.info.Producer), side.info.Plan, side.info.Seed)
		out = append(out, s)
	}
	return out
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Compare compares cand with ref tensor by tensor. The error is for bad input: a trace whose
// pieces do not make its logical tensors (a missing shard, two ranks claiming one, shapes the
// placement cannot make); numerical differences are verdicts in the report.
func Compare(ref, cand *trace.Trace, opt Options) (*Report, error) {
	rl, err := layoutOf(ref, opt.Rename)
	if err != nil {
		return nil, err
	}
	cl, err := layoutOf(cand, opt.Rename)
	if err != nil {
		return nil, err
	}
	rl.keep(opt.Filter)
	cl.keep(opt.Filter)
	ignored, ignoreCounts := ignoreTensors(rl, cl, opt.Ignore)
	c := &comparer{opt: opt, rl: rl, cl: cl, ref: traceInfo(rl), cand: traceInfo(cl)}
	rep := &Report{Ref: c.ref, Cand: c.cand, Command: opt.Command, AllowMissing: opt.AllowMissing, Tol: opt.Tol, Ignored: ignored}
	pairs := pairUp(rl, cl)
	rep.Results = make([]*Result, len(pairs))
	err = c.forEach(pairs, func(i int, w *worker) error {
		res, err := c.compareOne(pairs[i], w)
		rep.Results[i] = res
		return err
	})
	if err != nil {
		return nil, err
	}
	if err := c.recheckTinyTensors(pairs, rep); err != nil {
		return nil, err
	}
	rep.Rules = ruleUses(&opt, rep.Results, ignoreCounts)
	assignRoles(rep.Results)
	if err := c.diagnoseFailures(rep); err != nil {
		return nil, err
	}
	if err := c.rankBias(rep); err != nil {
		return nil, err
	}
	c.explainReport(rep)
	return rep, nil
}

type comparer struct {
	opt        Options
	rl, cl     *traceLayout
	ref, cand  TraceInfo
	kindFloors map[trace.Kind]float64 // set after the first pass; see recheckTinyTensors
}

// KindFloorFraction sets the smallest absolute floor of a tensor's tolerance: this fraction of
// the median rms of the tensors of its kind. A tensor that is mathematically zero (dL/dq when a
// packed sequence repeats its first token) holds only rounding noise, ~1e-18 in float64, on both
// sides; measured against its own rms that noise looks like an O(1) error. Against its kind's
// scale it is noise again, while an O(1) corruption of a genuinely small tensor (a ×2 of values
// 1e-6 beside grads of 1e-2) is still 1e+4× over a 1e-10 tolerance.
const KindFloorFraction = 1e-3

// recheckTinyTensors re-measures diverged tensors whose own rms is below their kind's floor,
// with that floor. The kind scale comes from the first pass's results, so it is the same
// whatever the scheduling. It costs nothing unless a finite tensor diverged.
func (c *comparer) recheckTinyTensors(pairs []pair, rep *Report) error {
	var w worker
	suspects := map[trace.Kind]bool{}
	for _, res := range rep.Results {
		if res.Verdict == Diverged && res.NonFinite == 0 {
			suspects[res.Kind] = true
		}
	}
	if len(suspects) == 0 {
		return nil
	}
	if err := c.measureIdentical(rep, suspects, &w); err != nil {
		return err
	}
	c.kindFloors = kindFloors(rep.Results)
	for i, res := range rep.Results {
		if res.Verdict != Diverged || res.NonFinite > 0 || res.RefRMS >= c.kindFloors[res.Kind] {
			continue
		}
		again, err := c.compareOne(pairs[i], &w)
		if err != nil {
			return err
		}
		rep.Results[i] = again
	}
	return nil
}

// measureIdentical fills in the rms of identical tensors of the given kinds (the first pass
// skips measuring what is bitwise equal), so that they count in their kind's scale.
func (c *comparer) measureIdentical(rep *Report, kinds map[trace.Kind]bool, w *worker) error {
	for _, res := range rep.Results {
		if res.Verdict != Identical || !kinds[res.Kind] || res.ref == nil {
			continue
		}
		var err error
		if w.refBuf, _, err = w.a.assemble(res.ref, w.refBuf, res.RTol); err != nil {
			return err
		}
		dt := dtypeOf(res.ref)
		sum, finite := sumSquares(dt, w.refBuf, growFloats(w.fbuf, decodeChunk))
		if finite > 0 {
			res.RefRMS = math.Sqrt(sum / float64(finite))
		}
	}
	return nil
}

// kindFloors is KindFloorFraction × the median rms of the compared (not identical) tensors of
// each kind.
func kindFloors(results []*Result) map[trace.Kind]float64 {
	rms := map[trace.Kind][]float64{}
	for _, r := range results {
		if r.RefRMS > 0 && !math.IsInf(r.RefRMS, 0) {
			rms[r.Kind] = append(rms[r.Kind], r.RefRMS)
		}
	}
	floors := map[trace.Kind]float64{}
	for k, v := range rms {
		slices.Sort(v)
		floors[k] = KindFloorFraction * v[len(v)/2]
	}
	return floors
}

// summandScale is the per-element magnitude of the summands of p's partial-sum sides (the
// larger where both are partial), or nil when neither side is a partial sum.
func summandScale(w *worker, p pair) []float64 {
	var ref, cand []float64
	if p.ref != nil && p.ref.partial {
		ref = w.refScale
	}
	if p.cand != nil && p.cand.partial {
		cand = w.candScale
	}
	switch {
	case ref == nil:
		return cand
	case cand != nil:
		for i, v := range cand {
			ref[i] = max(ref[i], v)
		}
	}
	return ref
}

// worker holds one goroutine's reusable buffers.
type worker struct {
	refScale, candScale []float64 // Σ|summand| of partial-sum sides (assembler.partialScale)
	a                   assembler
	refBuf, candBuf     []byte
	fbuf                []float64
	noiseBuf            []byte // the noise run's assembled tensor (rankBias)
	candMD5, refMD5     string
	candHash            sync.WaitGroup
}

func traceInfo(tl *traceLayout) TraceInfo {
	m := tl.tr.Files[0].Meta
	return TraceInfo{Dir: tl.tr.Dir, World: m.World, Mesh: m.Mesh.String(), Producer: m.Producer, ProducerVersion: m.ProducerVersion, Plan: m.Plan,
		Seed: m.Seed, Extra: m.Extra, Tensors: len(tl.tensors), Bytes: tl.stored}
}

type pair struct {
	name      string
	order     int
	ref, cand *layout
}

// pairUp matches logical tensors by name, in the reference's execution order (the candidate's
// for tensors only it has).
func pairUp(rl, cl *traceLayout) []pair {
	var ps []pair
	for _, l := range rl.tensors {
		ps = append(ps, pair{name: l.name, order: l.order, ref: l, cand: cl.byName[l.name]})
	}
	for _, l := range cl.tensors {
		if rl.byName[l.name] == nil {
			ps = append(ps, pair{name: l.name, order: l.order, cand: l})
		}
	}
	sort.SliceStable(ps, func(i, j int) bool {
		if ps[i].order != ps[j].order {
			return ps[i].order < ps[j].order
		}
		return ps[i].name < ps[j].name
	})
	return ps
}

// forEach runs work for every pair: on the calling goroutine when the traces are small, else on
// a pool. The error returned is the one of the earliest pair, whatever the scheduling.
func (c *comparer) forEach(pairs []pair, work func(int, *worker) error) error {
	total := c.rl.stored + c.cl.stored
	n := c.opt.Workers
	if n <= 0 {
		n = runtime.GOMAXPROCS(0)
	}
	prog := newProgress(c.opt.Progress, len(pairs), total)
	defer prog.finish()
	if n <= 1 || len(pairs) < 2 || total < parallelMin {
		var w worker
		for i := range pairs {
			if err := work(i, &w); err != nil {
				return err
			}
			prog.step(pairBytes(pairs[i]))
		}
		return nil
	}
	n = min(n, len(pairs))
	errs := make([]error, len(pairs))
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for g := 0; g < n; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := &worker{}
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= len(pairs) {
					return
				}
				if errs[i] = work(i, w); errs[i] != nil {
					failed.Store(true)
				}
				prog.step(pairBytes(pairs[i]))
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func pairBytes(p pair) int64 {
	var n int64
	if p.ref != nil {
		n += p.ref.stored
	}
	if p.cand != nil {
		n += p.cand.stored
	}
	return n
}

// compareOne rebuilds both sides of one logical tensor, hashes and compares them.
func (c *comparer) compareOne(p pair, w *worker) (*Result, error) {
	res := &Result{Name: p.name, Order: p.order, Metrics: Metrics{Worst: -1}, ref: p.ref, cand: p.cand}
	refDT, candDT := dtypeOf(p.ref), dtypeOf(p.cand)
	if refDT == 0 {
		refDT = candDT
	}
	if candDT == 0 {
		candDT = refDT
	}
	var normTol float64
	res.RTol, normTol = c.opt.tolFor(p.name, refDT, candDT, max(reduceOf(p.ref), reduceOf(p.cand)))
	if i := c.opt.ruleFor(p.name); i >= 0 {
		res.TolRule = c.opt.TolRules[i].Pattern.String()
	}
	var refRaw, candRaw []byte
	var err error
	fp := p.hasFingerprint()
	if l := p.ref; l != nil {
		res.Kind, res.RefShape, res.RefDType, res.RefPlace = l.kind, l.shape, l.dtype, l.place.String()
	}
	if l := p.ref; l != nil && !fp {
		if w.refBuf, res.RefReplicas, err = w.a.assemble(l, w.refBuf, res.RTol); err != nil {
			return res, err
		}
		refRaw = w.refBuf
		w.refScale = w.a.partialScale(l, w.refScale)
	}
	if l := p.cand; l != nil {
		if res.Kind == "" {
			res.Kind = l.kind
		}
		res.CandShape, res.CandDType, res.CandPlace = l.shape, l.dtype, l.place.String()
	}
	if l := p.cand; l != nil && !fp {
		if w.candBuf, res.CandReplicas, err = w.a.assemble(l, w.candBuf, res.RTol); err != nil {
			return res, err
		}
		candRaw = w.candBuf
		w.candScale = w.a.partialScale(l, w.candScale)
	}
	sameBytes := p.ref != nil && p.cand != nil && !fp && refDT == candDT && bytes.Equal(refRaw, candRaw)
	if !c.opt.SkipHashes && !fp {
		if sameBytes { // one hash serves both sides
			res.RefMD5 = md5Hex(refRaw)
			res.CandMD5 = res.RefMD5
		} else {
			res.RefMD5, res.CandMD5 = w.hashBoth(refRaw, candRaw, p.ref != nil, p.cand != nil)
		}
	}
	if p.ref != nil && p.cand != nil && p.ref.kind != p.cand.kind {
		res.Note = fmt.Sprintf("kind is %s in the reference, %s in the candidate", p.ref.kind, p.cand.kind)
	}
	if fp {
		return c.compareFingerprint(p, res, w, normTol)
	}
	if unpaired(p, res) {
		return res, nil
	}
	identical := sameBytes
	if identical && !hasNonFinite(refDT, refRaw) {
		res.Numel = tensor.Numel(res.RefShape)
	} else {
		res.Metrics = compareRaw(refDT, refRaw, candDT, candRaw, res.RefShape, res.RTol, c.kindFloors[res.Kind], summandScale(w, p), &w.fbuf)
	}
	// One element at its bound makes NormDev about rtol/√numel: the normwise test must not be
	// stricter than that on a small tensor (a loss, a norm weight), where one element is no
	// structure.
	res.NormTol = max(normTol, res.RTol/math.Sqrt(float64(max(res.Numel, 1))))
	switch {
	case len(res.CandReplicas) > 0 || len(res.RefReplicas) > 0:
		res.Verdict = ReplicaMismatch
		if len(res.CandReplicas) == 0 {
			res.Note = joinNote(res.Note, "the reference's own copies disagree")
		}
	case res.NonFinite > 0:
		res.Verdict = NonFinite
	case identical:
		res.Verdict = Identical
	case res.judge(res.NormTol):
		res.Verdict = Close
	default:
		res.Verdict = Diverged
	}
	return res, nil
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// reduceOf is l's reduction-length hint (0 for a missing side).
func reduceOf(l *layout) int {
	if l == nil {
		return 0
	}
	return l.reduce
}

func dtypeOf(l *layout) tensor.DType {
	if l == nil {
		return 0
	}
	return l.dtype
}

// hashBoth takes the MD5s of the present sides, the candidate's on its own goroutine when the
// tensor is large and the work is already spread over workers.
func (w *worker) hashBoth(ref, cand []byte, hasRef, hasCand bool) (string, string) {
	var rs, cs string
	if hasRef && hasCand && len(cand) >= md5SplitMin && runtime.GOMAXPROCS(0) > 1 {
		w.candHash.Add(1)
		go func() {
			defer w.candHash.Done()
			w.candMD5 = md5Hex(cand)
		}()
		rs = md5Hex(ref)
		w.candHash.Wait()
		return rs, w.candMD5
	}
	if hasRef {
		rs = md5Hex(ref)
	}
	if hasCand {
		cs = md5Hex(cand)
	}
	return rs, cs
}

// assignRoles marks the numerical failures at the earliest execution order as the root and
// the later ones as consequences.
func assignRoles(results []*Result) {
	first := -1
	for _, res := range results {
		if res.Verdict.Numerical() {
			first = res.Order
			break
		}
	}
	if first < 0 {
		return
	}
	for _, res := range results {
		if !res.Verdict.Numerical() {
			continue
		}
		if res.Order == first {
			res.Role = Root
		} else {
			res.Role = Consequence
		}
	}
}

// diagnoseFailures gives the earliest numerical failures a block diagnosis and an explanation,
// and every independent root one too: a later failure that cannot depend on any root so far
// (Independent), or whose structural mechanism differs from that of every root it can depend
// on, is a root of its own.
func (c *comparer) diagnoseFailures(rep *Report) error {
	limit := c.opt.MaxDiagnosed
	if limit <= 0 {
		limit = DefaultMaxDiagnosed
	}
	var w worker
	done := 0
	var roots []*Result
	for _, res := range rep.Results {
		if !res.Verdict.Numerical() {
			continue
		}
		parents := dependsOn(res, roots)
		if res.Role == Consequence && len(parents) == 0 {
			res.Role = Independent
		}
		if res.Fingerprint != nil { // judged on fingerprints: no values to diagnose
			if res.Role != Consequence {
				roots = append(roots, res)
			}
			continue
		}
		if done >= limit && res.Role == Consequence {
			rep.Undiagnosed++
			continue
		}
		done++
		var err error
		if w.refBuf, _, err = w.a.assemble(res.ref, w.refBuf, res.RTol); err != nil {
			return err
		}
		if w.candBuf, _, err = w.a.assemble(res.cand, w.candBuf, res.RTol); err != nil {
			return err
		}
		if res.Verdict == ShapeMismatch {
			res.Explanation = explainShape(res, tensor.Decode(res.ref.dtype, w.refBuf, nil), tensor.Decode(res.cand.dtype, w.candBuf, nil), res.RTol, c.kindFloors[res.Kind])
		} else if res.Diagnosis, res.Signature, err = c.diagnose(res, w.refBuf, w.candBuf); err != nil {
			return err
		}
		if res.Role == Consequence && ownMechanism(res, parents) {
			res.Role = Independent
		}
		if res.Role != Consequence {
			roots = append(roots, res)
			res.Heatmap = heatmapOf(res, w.refBuf, w.candBuf)
		}
		if res.Diagnosis == nil {
			continue
		}
		for _, row := range res.Diagnosis.Rows {
			if !row.OK() && row.Rank >= 0 && !slices.Contains(res.Ranks, row.Rank) {
				res.Ranks = append(res.Ranks, row.Rank)
			}
		}
		slices.Sort(res.Ranks)
	}
	return nil
}

// progress prints "compared i/n tensors (x of y)" at most every progressEvery, in place.
type progress struct {
	w                 io.Writer
	mu                sync.Mutex
	last              time.Time
	done, total       int
	bytes, totalBytes int64
	printed           bool
}

const progressEvery = 200 * time.Millisecond

func newProgress(w io.Writer, total int, totalBytes int64) *progress {
	return &progress{w: w, total: total, totalBytes: totalBytes, last: time.Now()}
}

func (p *progress) step(b int64) {
	if p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done++
	p.bytes += b
	if now := time.Now(); now.Sub(p.last) >= progressEvery {
		p.last = now
		p.printed = true
		fmt.Fprintf(p.w, "\rspcheck: compared %d/%d tensors (%s of %s)", p.done, p.total, FormatBytes(p.bytes), FormatBytes(p.totalBytes))
	}
}

func (p *progress) finish() {
	if p.w != nil && p.printed {
		fmt.Fprint(p.w, "\r\033[K")
	}
}

// FormatBytes prints a byte count in binary units.
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// unpaired gives res the verdict of a pair that cannot be compared element by element — a
// tensor on one side only, or shapes that differ — and reports whether it did.
func unpaired(p pair, res *Result) bool {
	switch {
	case p.cand == nil:
		res.Verdict = Missing
	case p.ref == nil:
		res.Verdict = Extra
	case !slices.Equal(res.RefShape, res.CandShape):
		res.Verdict = ShapeMismatch
	default:
		return false
	}
	return true
}
