package fuzz

import (
	"errors"
	"fmt"
	"io"
	"math/rand"
	"reflect"
	"runtime"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/prop"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/serving"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/verify"
)

// Properties of a campaign, as Summary.Cases counts them.
const (
	PropEquivalence = "equivalence" // a plan verifies against the oracle (catalogue off)
	PropDetection   = "detection"   // with a bug on, a plan fails
	PropAlgebra     = "algebra"     // the collective laws
	PropServing     = "serving"     // the decode loop's invariants
)

// Config is one fuzz campaign. Case i (0, 1, 2, …) draws from a generator seeded by
// CaseSeed(Seed, i), so a campaign is a deterministic sequence of cases: --count N runs the
// first N, shards split them by index, and a counterexample names the case that found it.
type Config struct {
	Seed   int64
	Budget time.Duration // stop starting cases after this long (0: no limit; Count must be > 0)
	Count  int           // run the campaign's cases 0…Count−1 (0: until the budget ends)
	// Bug is "" to fuzz the correct simulator (equivalence, with algebra and serving cases
	// interleaved), or a bug's name: detection of that bug (a simulate variant or one of
	// ServingBugs).
	Bug string
	// Variants is the catalogue of bug variants Bug may name (package bugs' Variants).
	Variants []*simulate.Variant
	// Blind hunts the bug without steering: plans are drawn as for the correct simulator, not
	// only those on which the bug can show (what equivalence fuzzing would meet).
	Blind         bool
	Shard, Shards int    // run only the cases i with i mod Shards = Shard (Shards 0 means 1)
	Only          []int  // run only these cases (what a counterexample's reproduce line does)
	Corpus        string // directory of saved counterexample plans ("" = none)
	Space         Space  // the zero Space means TinySpace
	Workers       int    // cases run in parallel (0: GOMAXPROCS)
	MaxShrinks    int    // shrink rounds per counterexample (0: DefaultMaxShrinks; < 0: no shrinking)
	Log           io.Writer
	Live          bool // Log is a terminal: one status line updated in place
}

// DefaultMaxShrinks bounds the shrink rounds of one counterexample; each round tries the
// current plan's one-step simplifications (about 25), and real counterexamples of the tiny
// space need about 10 to 25 rounds.
const DefaultMaxShrinks = 100

// Summary is what a campaign (or one shard of it) did. Shards of one campaign merge (Merge).
type Summary struct {
	Seed            int64            `json:"seed"`
	Bug             string           `json:"bug,omitempty"`
	Count           int              `json:"count,omitempty"`
	Shards          int              `json:"shards"`
	ShardsRun       []int            `json:"shards_run"`
	Cases           map[string]int   `json:"cases"` // cases checked, by property
	Discarded       int              `json:"discarded"`
	CorpusRerun     int              `json:"corpus_rerun"`
	Seconds         float64          `json:"seconds"`
	Counterexamples []Counterexample `json:"counterexamples"`
}

// Counterexample is a falsified property: what was drawn, what it shrank to, the verifier's
// diagnosis and one command that reproduces it.
type Counterexample struct {
	Property      string  `json:"property"`
	Bug           string  `json:"bug,omitempty"`
	Case          int     `json:"case"` // campaign case index; −1 for a corpus plan
	CaseSeed      int64   `json:"case_seed"`
	Drawn         string  `json:"drawn"`
	Shrunk        string  `json:"shrunk"`
	ShrinkSteps   int     `json:"shrink_steps"`
	DetectSeconds float64 `json:"detect_seconds"` // campaign start to the failing draw
	ShrinkSeconds float64 `json:"shrink_seconds"`
	// Report is the verifier's report of the shrunk plan (its block diagnosis for the first
	// divergence only: the rest are its consequences), and Serving the shrunk serving run: the
	// evidence, which package reports renders. A summary file holds their rendering in
	// Diagnosis instead; Diagnosis alone holds what has no report (a run error, an algebra
	// law's message, a note that the failure did not repeat).
	Report    *verify.Report  `json:"-"`
	Serving   *serving.Report `json:"-"`
	Diagnosis string          `json:"diagnosis"`
	Reproduce string          `json:"reproduce"`
	Saved     string          `json:"saved,omitempty"`  // corpus file the shrunk plan went to
	Corpus    string          `json:"corpus,omitempty"` // the corpus file that failed again (Case −1)
}

// Failed reports whether the campaign found a counterexample.
func (s *Summary) Failed() bool { return len(s.Counterexamples) > 0 }

// CaseSeed is the generator seed of case i of a campaign.
func CaseSeed(seed int64, i int) int64 {
	return int64(tensor.SplitMix64(uint64(seed)^tensor.SplitMix64(uint64(i))) >> 1)
}

// kindOf is the property case i checks. Fuzzing the correct simulator interleaves one
// algebra and one serving case in every ten with eight plans.
func (c *Config) kindOf(i int) string {
	switch {
	case c.Bug != "":
		if _, ok := LookupServingBug(c.Bug); ok {
			return PropServing
		}
		return PropDetection
	case i%10 == 8:
		return PropAlgebra
	case i%10 == 9:
		return PropServing
	}
	return PropEquivalence
}

// Validate checks the configuration (bad usage).
func (c *Config) Validate() error {
	switch {
	case c.Shards < 0 || c.Shard < 0 || (c.Shards > 0 && c.Shard >= c.Shards) || (c.Shards == 0 && c.Shard > 0):
		return fmt.Errorf("shard %d/%d: want 0 ≤ i < n", c.Shard, c.Shards)
	case c.Budget < 0 || c.Count < 0:
		return errors.New("budget and count must not be negative")
	case c.Budget == 0 && c.Count == 0 && len(c.Only) == 0:
		return errors.New("a campaign needs a budget or a count")
	}
	for _, i := range c.Only {
		if i < 0 || (c.Shards > 1 && i%c.Shards != c.Shard) {
			return fmt.Errorf("case %d is not a case of shard %d/%d", i, c.Shard, max(c.Shards, 1))
		}
	}
	if err := c.Space.Validate(); err != nil {
		return err
	}
	if _, ok := LookupServingBug(c.Bug); ok {
		return nil
	}
	return Target{Bug: c.Bug, Variants: c.Variants}.Validate()
}

// campaign is a running Config.
type campaign struct {
	cfg     Config
	start   time.Time
	stop    atomic.Int64 // no case from this index on starts (the lowest failing case's index)
	next    atomic.Int64 // next case index to consider
	mu      sync.Mutex
	sum     Summary
	done    []doneCase // every finished case, in completion order
	found   []Counterexample
	cases   atomic.Int64 // finished cases (the status line)
	plans   atomic.Int64
	current atomic.Value // string: the plan being checked
}

// doneCase is a finished case: its index and whether it was discarded.
type doneCase struct {
	i         int
	discarded bool
}

// Run runs a campaign and returns its summary; the error is a bad configuration or corpus.
func Run(cfg Config) (*Summary, error) {
	if cfg.Shards == 0 {
		cfg.Shards = 1
	}
	if reflect.ValueOf(cfg.Space).IsZero() {
		cfg.Space = TinySpace()
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	switch {
	case cfg.MaxShrinks == 0:
		cfg.MaxShrinks = DefaultMaxShrinks
	case cfg.MaxShrinks < 0:
		cfg.MaxShrinks = 0
	}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	corpus, err := loadCorpus(cfg.Corpus, cfg.Bug)
	if err != nil {
		return nil, err
	}
	c := &campaign{cfg: cfg, start: time.Now(), sum: Summary{Seed: cfg.Seed, Bug: cfg.Bug, Count: cfg.Count,
		Shards: cfg.Shards, ShardsRun: []int{cfg.Shard}, Cases: map[string]int{}}}
	c.stop.Store(1<<62 - 1)
	c.current.Store("")
	c.logStart()
	stopProgress := c.progress()
	if len(cfg.Only) == 0 && len(corpus) > 0 {
		c.rerunCorpus(corpus)
	}
	if len(c.found) == 0 {
		c.runCases()
	}
	stopProgress()
	c.sum.Seconds = time.Since(c.start).Seconds()
	c.finish()
	return &c.sum, nil
}

// runCases runs the shard's cases on cfg.Workers goroutines until the budget, the count or
// a counterexample stops them. A counterexample at case i still lets every case below i
// finish, and only the lowest-index counterexample is kept, so a counted campaign reports
// the same counterexample whatever the number of workers.
func (c *campaign) runCases() {
	deadline := time.Time{}
	if c.cfg.Budget > 0 {
		deadline = c.start.Add(c.cfg.Budget)
	}
	var wg sync.WaitGroup
	for range c.cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i, ok := c.take(deadline)
				if !ok {
					return
				}
				c.runCase(i)
			}
		}()
	}
	wg.Wait()
}

// take returns the next case index of this shard to run.
func (c *campaign) take(deadline time.Time) (int, bool) {
	if c.cfg.Only != nil {
		k := int(c.next.Add(1) - 1)
		if k >= len(c.cfg.Only) || int64(c.cfg.Only[k]) >= c.stop.Load() {
			return 0, false
		}
		return c.cfg.Only[k], true
	}
	if !deadline.IsZero() && time.Now().After(deadline) {
		return 0, false
	}
	k := c.next.Add(1) - 1
	i := c.cfg.Shard + int(k)*c.cfg.Shards
	if (c.cfg.Count > 0 && i >= c.cfg.Count) || int64(i) >= c.stop.Load() {
		return 0, false
	}
	return i, true
}

// runCase runs case i's property once (shrinking a counterexample) and records the outcome.
func (c *campaign) runCase(i int) {
	kind := c.cfg.kindOf(i)
	seed := CaseSeed(c.cfg.Seed, i)
	gp := gopter.DefaultGenParameters()
	gp.Rng = rand.New(rand.NewSource(seed))
	gp.MaxShrinkCount = c.cfg.MaxShrinks
	failing := func() { c.failingAt(i) }
	var cx *Counterexample
	var discarded bool
	switch kind {
	case PropEquivalence, PropDetection:
		cx, discarded = c.planCase(c.target().Gen(), gp, failing)
	case PropAlgebra:
		cx = c.algebraCase(gp, seed, failing)
	case PropServing:
		cx = c.servingCase(gp, seed, failing)
	}
	c.cases.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.done = append(c.done, doneCase{i: i, discarded: discarded})
	if cx != nil {
		cx.Property, cx.Bug, cx.Case, cx.CaseSeed = kind, c.cfg.Bug, i, seed
		if cx.Reproduce == "" {
			cx.Reproduce = c.caseCommand(i)
		}
		c.found = append(c.found, *cx)
	}
}

// failingAt stops the start of every case above i as soon as case i has failed (before it
// shrinks), so few cases past the counterexample run.
func (c *campaign) failingAt(i int) {
	for {
		s := c.stop.Load()
		if int64(i) >= s || c.stop.CompareAndSwap(s, int64(i)) {
			return
		}
	}
}

// count fills the summary's case counts from the finished cases, leaving out those above the
// first counterexample: which of them ran depends on timing, not on the campaign.
func (c *campaign) count() {
	limit := 1<<62 - 1
	if len(c.found) > 0 {
		limit = c.found[0].Case
	}
	for _, d := range c.done {
		switch {
		case d.i > limit:
		case d.discarded:
			c.sum.Discarded++
		default:
			c.sum.Cases[c.cfg.kindOf(d.i)]++
		}
	}
}

// target is the campaign's plan target.
func (c *campaign) target() Target {
	return Target{Bug: c.cfg.Bug, Space: c.cfg.Space, Blind: c.cfg.Blind, Variants: c.cfg.Variants}
}

// caseCommand is the command that re-runs case i alone.
func (c *campaign) caseCommand(i int) string {
	s := fmt.Sprintf("spcheck fuzz --seed %d --case %d", c.cfg.Seed, i)
	if c.cfg.Shards > 1 {
		s += fmt.Sprintf(" --shard %d/%d", i%c.cfg.Shards, c.cfg.Shards)
	}
	if c.cfg.Bug != "" {
		s += " --bug " + c.cfg.Bug
	}
	return s
}

// planCase checks one plan from g (shrinking it if it fails). discarded: no plan could be
// drawn on which the bug can show.
func (c *campaign) planCase(g gopter.Gen, gp *gopter.GenParameters, failing func()) (cx *Counterexample, discarded bool) {
	var drawn time.Time
	checks := 0
	observe := func(p plan.Plan, f *Failure) {
		if checks == 0 {
			drawn = time.Now()
			c.plans.Add(1)
			if f != nil {
				failing()
			}
		}
		checks++
		c.current.Store(p.String())
	}
	res := c.target().property(g, observe)(gp)
	switch res.Status {
	case gopter.PropTrue, gopter.PropProof:
		return nil, false
	case gopter.PropUndecided:
		return nil, true
	}
	if len(res.Args) == 0 { // the generator or the check panicked: no plan to show
		return &Counterexample{Diagnosis: fmt.Sprintf("%v\n%s", res.Error, res.ErrorStack)}, false
	}
	arg := res.Args[0]
	shrunk, orig := arg.Arg.(plan.Plan), arg.OrigArg.(plan.Plan)
	cx = &Counterexample{Drawn: orig.String(), Shrunk: shrunk.String(), ShrinkSteps: arg.Shrinks,
		DetectSeconds: drawn.Sub(c.start).Seconds(), ShrinkSeconds: time.Since(drawn).Seconds(),
		Reproduce: pipeline.VerifyCommand(shrunk)}
	cx.Report, cx.Diagnosis = diagnose(shrunk, c.target().variant())
	if res.Error != nil {
		cx.Report, cx.Diagnosis = nil, res.Error.Error()
	}
	return cx, false
}

// diagnose runs a failing plan again for its evidence: the verifier's report, with the block
// diagnosis of the first divergence only (the rest are its consequences), or, when there is no
// report, what happened instead.
func diagnose(p plan.Plan, v *simulate.Variant) (*verify.Report, string) {
	f := check(p, v, 1, true)
	switch {
	case f == nil:
		return nil, "the shrunk plan verifies when run again: the failure is not deterministic"
	case f.Err != nil:
		return nil, f.Err.Error()
	}
	return f.Report, ""
}

func (c *campaign) algebraCase(gp *gopter.GenParameters, seed int64, failing func()) *Counterexample {
	return c.timedCase(gp, seed, failing, prop.ForAll(func(a AlgebraCase) string {
		if err := CheckAlgebra(a); err != nil {
			return err.Error()
		}
		return ""
	}, AlgebraGen()), func(arg *gopter.PropArg) string { return arg.Arg.(AlgebraCase).String() })
}

func (c *campaign) servingCase(gp *gopter.GenParameters, seed int64, failing func()) *Counterexample {
	variant := func(*serving.Config) {}
	if b, ok := LookupServingBug(c.cfg.Bug); ok {
		variant = b.Variant
	}
	var last *serving.Report // the run that failed last: after shrinking, the shrunk one
	cx := c.timedCase(gp, seed, failing, ServingProperty(variant, func(r serving.Report) { last = &r }),
		func(arg *gopter.PropArg) string { return arg.ArgFormatted })
	if cx != nil && cx.Shrunk != "" {
		cx.Serving = last
	}
	return cx
}

// timedCase runs a property once without shrinking and, if it fails, again from the same
// seed with shrinking: the first run times the detection, the second the shrink.
func (c *campaign) timedCase(gp *gopter.GenParameters, seed int64, failing func(), p gopter.Prop, shrunk func(*gopter.PropArg) string) *Counterexample {
	shrinks := gp.MaxShrinkCount
	gp.MaxShrinkCount = 0
	if p(gp).Success() {
		return nil
	}
	found := time.Now()
	failing()
	gp.MaxShrinkCount, gp.Rng = shrinks, rand.New(rand.NewSource(seed))
	res := p(gp)
	if res.Success() { // cannot happen for a deterministic property; say so rather than hide it
		return &Counterexample{Diagnosis: "the case failed once and passed when run again: the property is not deterministic"}
	}
	if len(res.Args) == 0 { // the generator or the check panicked
		return &Counterexample{Diagnosis: fmt.Sprintf("%v\n%s", res.Error, res.ErrorStack), DetectSeconds: found.Sub(c.start).Seconds()}
	}
	arg := res.Args[0]
	diag := strings.Join(res.Labels, "\n")
	if res.Error != nil {
		diag = strings.TrimSpace(diag + "\n" + res.Error.Error())
	}
	return &Counterexample{Drawn: arg.OrigArgFormatted, Shrunk: shrunk(arg), ShrinkSteps: arg.Shrinks,
		DetectSeconds: found.Sub(c.start).Seconds(), ShrinkSeconds: time.Since(found).Seconds(), Diagnosis: diag}
}

// rerunCorpus checks the corpus plans first; the first that still fails (shrunk again) is the
// campaign's counterexample.
func (c *campaign) rerunCorpus(corpus []corpusPlan) {
	t := c.target()
	for _, cp := range corpus {
		if t.CanShow(cp.plan) != nil {
			continue
		}
		gp := gopter.DefaultGenParameters()
		gp.MaxShrinkCount = c.cfg.MaxShrinks
		cx, _ := c.planCase(t.Const(cp.plan), gp, func() {})
		c.mu.Lock()
		c.sum.CorpusRerun++
		if cx != nil {
			cx.Property, cx.Bug, cx.Case, cx.Corpus = c.cfg.kindOf(0), c.cfg.Bug, -1, cp.file
			c.found = append(c.found, *cx)
		}
		c.mu.Unlock()
		if cx != nil {
			return
		}
	}
}

// finish keeps the lowest-index counterexample, saves it to the corpus and prints it.
func (c *campaign) finish() {
	sort.Slice(c.found, func(a, b int) bool { return c.found[a].Case < c.found[b].Case })
	c.count()
	if len(c.found) > 0 {
		cx := c.found[0]
		if c.cfg.Corpus != "" && (cx.Property == PropEquivalence || cx.Property == PropDetection) {
			saved, err := saveCorpus(c.cfg.Corpus, cx.Shrunk)
			if err != nil {
				fmt.Fprintf(c.cfg.Log, "fuzz: could not save the counterexample to the corpus: %v\n", err)
			}
			cx.Saved = saved
		}
		c.sum.Counterexamples = []Counterexample{cx}
	}
}
