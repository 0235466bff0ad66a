package bugs

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/verify"
)

// CorrectPlans is the gate's matrix of correct plans: every parallel feature and awkward edge
// at least once (TP 1–4, PP 1–3, DP 2, both SP styles, partial P2P with and without SP — where
// the planner's guard must hold —, micro-batches and both schedules, MTP depths 0–2, packed
// sequences, a tied head, a sequence and a vocab that tp does not divide, fp32 and bf16). Each
// runs in tens of milliseconds.
var CorrectPlans = []string{
	"mtp=1",
	"tp=2,sp=megatron,mtp=0",
	"tp=2,sp=vllm,mtp=2,packed=3:5",
	"tp=2,pp=2,sp=megatron,partial_p2p=true,mtp=0",
	"tp=2,pp=2,sp=vllm,partial_p2p=true,microbatches=2,schedule=gpipe",
	"tp=2,pp=2,partial_p2p=true,mtp=1",
	"tp=3,pp=2,dp=2,sp=megatron,seq=7,heads=3,hidden=12,ffn=24,batch=4",
	"tp=4,sp=vllm,seq=10,heads=4,ffn=32",
	"pp=3,layers=3,microbatches=4,batch=4,tied=true",
	"dp=2,mtp=2,packed=4:3:5",
	"tp=2,pp=2,dp=2,sp=vllm,mtp=1,packed=4:3:5,microbatches=2,batch=4",
	"tp=2,pp=2,sp=megatron,mtp=1,dtype=fp32",
	"tp=2,sp=megatron,dtype=bf16",
}

// Case kinds of the gate.
const (
	CaseCorrect = "correct" // a correct plan verifies
	CaseBug     = "bug"     // a catalogue bug is detected with its expected diagnosis
	CaseFixed   = "fixed"   // the bug switched off verifies clean on the same plan
	CaseExample = "example" // a worked example reproduces its hand-worked numbers
)

// Case is one check of the gate.
type Case struct {
	Kind      string
	Name      string // the plan (correct), the bug or the example
	Plan      string // the plan run ("" for serving and examples)
	Pass      bool
	Verdict   string
	First     string
	Signature string
	Detail    string   // one line: what spcheck saw
	Problems  []string // why it failed
	Command   string   // the command that reproduces it
	Elapsed   time.Duration
}

// GateReport is the outcome of the whole gate.
type GateReport struct {
	Cases   []Case
	Elapsed time.Duration
	Procs   int // GOMAXPROCS it ran with
}

// OK reports whether every case passed.
func (g *GateReport) OK() bool {
	for _, c := range g.Cases {
		if !c.Pass {
			return false
		}
	}
	return len(g.Cases) > 0
}

// Failed counts the failing cases.
func (g *GateReport) Failed() int {
	n := 0
	for _, c := range g.Cases {
		if !c.Pass {
			n++
		}
	}
	return n
}

// Count counts the cases of a kind.
func (g *GateReport) Count(kind string) int {
	n := 0
	for _, c := range g.Cases {
		if c.Kind == kind {
			n++
		}
	}
	return n
}

// Gate runs `spcheck check`: every correct plan must verify; every catalogue bug must be
// detected on its minimal plan with its expected verdict, first-divergence tensor and signature
// (and numbers); its fixed form must verify clean on the same plan; every worked example must
// reproduce their hand-worked numbers. Cases run on GOMAXPROCS workers; the report lists them in
// a fixed order.
func Gate() *GateReport {
	start := time.Now()
	var jobs []func() Case
	for _, s := range CorrectPlans {
		jobs = append(jobs, func() Case { return correctCase(s) })
	}
	for _, b := range All() {
		jobs = append(jobs, func() Case { return bugCase(b) }, func() Case { return fixedCase(b) })
	}
	for _, e := range Examples() {
		jobs = append(jobs, func() Case { return exampleCase(e) })
	}
	g := &GateReport{Cases: make([]Case, len(jobs)), Procs: runtime.GOMAXPROCS(0)}
	var wg sync.WaitGroup
	next := make(chan int)
	for w := 0; w < min(g.Procs, len(jobs)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				t := time.Now()
				g.Cases[i] = jobs[i]()
				g.Cases[i].Elapsed = time.Since(t)
			}
		}()
	}
	for i := range jobs {
		next <- i
	}
	close(next)
	wg.Wait()
	g.Elapsed = time.Since(start)
	return g
}

func correctCase(s string) Case {
	c := Case{Kind: CaseCorrect, Name: s}
	p, err := plan.Parse(s)
	if err != nil {
		c.Problems = []string{err.Error()}
		return c
	}
	return verifyCase(c, p)
}

// verifyCase runs p through oracle, simulator and verifier: it passes when everything verifies.
func verifyCase(c Case, p plan.Plan) Case {
	c.Plan, c.Command = p.String(), pipeline.VerifyCommand(p)
	rep, err := pipeline.Verify(p, nil, verify.Options{Command: c.Command})
	if err != nil {
		c.Verdict, c.Problems = VerdictError, []string{err.Error()}
		return c
	}
	c.Pass = rep.Verified()
	c.Verdict, c.Detail = VerdictClean, fmt.Sprintf("%d tensors: %d identical, %d close", len(rep.Results), rep.Count(verify.Identical), rep.Count(verify.Close))
	if !c.Pass {
		c.Verdict = "failed"
		if f := rep.First(); len(f) > 0 {
			c.First, c.Verdict = f[0].Name, string(f[0].Verdict)
		}
		c.Problems = []string{fmt.Sprintf("does not verify: %d tensors fail, first %s", rep.Failures(), c.First)}
	}
	return c
}

func bugCase(b *Bug) Case {
	c := Case{Kind: CaseBug, Name: b.Name}
	var p plan.Plan
	if b.Domain == Training {
		p = b.MinimalPlan()
		c.Plan = p.String()
		if err := b.CanShow(p); err != nil {
			c.Problems = []string{"the minimal plan cannot show the bug: " + err.Error()}
			return c
		}
	}
	o, err := Run(b, p)
	if err != nil {
		c.Verdict, c.Problems = VerdictError, []string{err.Error()}
		return c
	}
	c.Command, c.Verdict, c.First, c.Signature, c.Detail = o.Command, o.Verdict, o.First, string(o.Signature), o.Detail
	if !o.Detected() {
		c.Problems = append(c.Problems, "not detected")
	}
	c.Problems = append(c.Problems, o.Mismatches()...)
	c.Pass = len(c.Problems) == 0
	return c
}

func fixedCase(b *Bug) Case {
	c := Case{Kind: CaseFixed, Name: b.Name}
	if b.Domain == Serving {
		cfg := b.Config()
		b.Fixed(&cfg)
		o, err := RunServing(b, cfg)
		if err != nil {
			c.Verdict, c.Problems = VerdictError, []string{err.Error()}
			return c
		}
		c.Verdict, c.Detail, c.Command = o.Verdict, o.Detail, o.Command+" --fixed"
		c.Pass = !o.Detected()
		if !c.Pass {
			c.Problems = []string{"the fixed loop still fails: " + o.Detail}
		}
		return c
	}
	p := b.MinimalPlan()
	p.Bug = ""
	return verifyCase(c, p)
}

func exampleCase(e *Example) Case {
	c := Case{Kind: CaseExample, Name: e.Name, Command: "spcheck repro " + e.Name}
	r, err := e.Run()
	if err != nil {
		c.Verdict, c.Problems = VerdictError, []string{err.Error()}
		return c
	}
	for _, f := range r.Facts {
		if !f.OK() {
			c.Problems = append(c.Problems, fmt.Sprintf("%s: %s, expected %s", f.What, f.Got, f.Want))
		}
	}
	c.Pass = r.OK()
	c.Verdict = fmt.Sprintf("%d/%d numbers as worked out for %s", len(r.Facts)-len(c.Problems), len(r.Facts), e.Source)
	c.Detail = e.Title
	return c
}

// Summary is the gate's outcome in one line.
func (g *GateReport) Summary() string {
	status := "PASSED"
	if !g.OK() {
		status = "FAILED"
	}
	var parts []string
	for _, k := range []string{CaseCorrect, CaseBug, CaseFixed, CaseExample} {
		pass, n := 0, 0
		for _, c := range g.Cases {
			if c.Kind == k {
				n++
				if c.Pass {
					pass++
				}
			}
		}
		parts = append(parts, fmt.Sprintf("%d/%d %s", pass, n, kindNoun[k]))
	}
	return fmt.Sprintf("spcheck check: %s — %s", status, strings.Join(parts, ", "))
}

var kindNoun = map[string]string{
	CaseCorrect: "correct plans verify",
	CaseBug:     "bugs detected as expected",
	CaseFixed:   "fixed forms verify",
	CaseExample: "worked examples match",
}
