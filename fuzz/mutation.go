package fuzz

import (
	"fmt"
	"hash/fnv"
	"io"
	"math/rand"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
)

// MutationConfig is a mutation-score run: detection of every bug (each registered simulate
// variant and every serving bug) from fresh seeds, without telling the generator anything
// about the bug beyond its name.
type MutationConfig struct {
	Seed    int64
	Trials  int           // campaigns per bug, each from its own seed (0: 1)
	Budget  time.Duration // per campaign
	Space   Space
	Workers int
	Bugs    []string // nil: MutationBugs of the Variants the Space reaches (Reachable)
	// Variants is the catalogue of bug variants (package bugs' Variants).
	Variants []*simulate.Variant
	Blind    bool      // hunt without steering (Config.Blind)
	Log      io.Writer // one line per bug as it finishes (nil: none)
}

// MutationResult is one bug's row of the mutation table.
type MutationResult struct {
	Bug      string
	Serving  bool
	Trials   int
	Detected int
	Detect   []float64 // seconds to detection (the failing draw), per detecting trial
	Cases    []int     // cases run until detection, per detecting trial
	// First is the counterexample of the first detecting trial (its shrunk plan and steps).
	First *Counterexample
	// Why a bug went undetected.
	Why string
}

// MedianDetect is the median time to detection over the detecting trials (0 if none).
func (r MutationResult) MedianDetect() float64 {
	if len(r.Detect) == 0 {
		return 0
	}
	d := slices.Clone(r.Detect)
	sort.Float64s(d)
	if n := len(d); n%2 == 0 {
		return (d[n/2-1] + d[n/2]) / 2
	}
	return d[len(d)/2]
}

// ReachProbes is how many plans Reachable draws from a space.
const ReachProbes = 256

// Reachable splits variants into those that some of ReachProbes plans drawn from s (a fixed
// seed) can show, and those none can: a bug whose conditions no plan of the space meets (a
// reduction longer than its sequences reach, a dtype it never draws) cannot be searched for
// there.
func Reachable(variants []*simulate.Variant, s Space) (in, out []*simulate.Variant) {
	r := rand.New(rand.NewSource(1))
	probes := make([]plan.Plan, ReachProbes)
	for i := range probes {
		probes[i] = Draw(r, s)
	}
	for _, v := range variants {
		if slices.ContainsFunc(probes, func(p plan.Plan) bool { return v.CanShow(p) == nil }) {
			in = append(in, v)
		} else {
			out = append(out, v)
		}
	}
	return in, out
}

// MutationBugs lists the variants' names, then the serving bugs'.
func MutationBugs(variants []*simulate.Variant) []string {
	var out []string
	for _, v := range variants {
		out = append(out, v.Name)
	}
	for _, b := range ServingBugs {
		out = append(out, b.Name)
	}
	return out
}

// trialSeed is the campaign seed of one bug's trial: fresh per bug and trial, fixed by the
// mutation seed and the bug's name (not its position in the catalogue, which grows).
func trialSeed(seed int64, bug string, trial int) int64 {
	h := fnv.New64a()
	h.Write([]byte(bug))
	return CaseSeed(seed^int64(h.Sum64()>>1), trial)
}

// Mutation runs detection campaigns for every bug and returns one row per bug.
func Mutation(cfg MutationConfig) ([]MutationResult, error) {
	bugs := cfg.Bugs
	if bugs == nil {
		in, out := Reachable(cfg.Variants, cfg.Space)
		bugs = MutationBugs(in)
		for _, v := range out {
			if cfg.Log != nil {
				fmt.Fprintf(cfg.Log, "%s: no plan of the space can show it; not a mutation target\n", v.Name)
			}
		}
	}
	trials := max(cfg.Trials, 1)
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	var out []MutationResult
	for _, bug := range bugs {
		_, serving := LookupServingBug(bug)
		r := MutationResult{Bug: bug, Serving: serving, Trials: trials}
		discarded := 0
		for k := range trials {
			s, err := Run(Config{Seed: trialSeed(cfg.Seed, bug, k), Budget: cfg.Budget, Bug: bug, Variants: cfg.Variants,
				Space: cfg.Space, Workers: cfg.Workers, Blind: cfg.Blind})
			if err != nil {
				return nil, err
			}
			if s.Failed() {
				cx := s.Counterexamples[0]
				r.Detected++
				r.Detect = append(r.Detect, cx.DetectSeconds)
				r.Cases = append(r.Cases, cx.Case+1)
				if r.First == nil {
					r.First = &cx
				}
			} else if s.Discarded > 0 && totalCases(s) == 0 {
				discarded++
			}
		}
		switch {
		case r.Detected == trials:
		case discarded == trials-r.Detected:
			r.Why = fmt.Sprintf("no plan of the space can show it (%d draws per case)", maxDraws)
		default:
			r.Why = fmt.Sprintf("not found within %s", cfg.Budget)
		}
		fmt.Fprintf(cfg.Log, "mutation: %-40s %s\n", bug, r.verdict())
		out = append(out, r)
	}
	return out, nil
}

func totalCases(s *Summary) int {
	n := 0
	for _, k := range s.Cases {
		n += k
	}
	return n
}

func (r MutationResult) verdict() string {
	if r.Detected == 0 {
		return "survived: " + r.Why
	}
	return fmt.Sprintf("detected %d/%d, median %.2fs", r.Detected, r.Trials, r.MedianDetect())
}

// Score is detected bugs over bugs (a bug counts as detected when every trial found it).
func Score(rs []MutationResult) (detected, total int) {
	for _, r := range rs {
		if r.Detected == r.Trials {
			detected++
		}
	}
	return detected, len(rs)
}

// Compact is p's plan string without the keys whose value is the default's: what a reader
// needs, and still what Parse reads back to p (Parse starts from the defaults).
func Compact(p plan.Plan) string {
	def := plan.Default()
	var items []string
	for _, k := range plan.Keys() {
		v, _ := p.Get(k)
		dv, _ := def.Get(k)
		if k == "packed" && v != "" {
			items = append(items, k+"="+v)
			continue
		}
		if v != dv && !(k == "seq" && len(p.Packed) > 0) {
			items = append(items, k+"="+v)
		}
	}
	return strings.Join(items, ",")
}
