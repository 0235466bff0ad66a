package fuzz

import (
	"fmt"

	"github.com/leanovate/gopter"
	"github.com/leanovate/gopter/commands"
	"github.com/leanovate/gopter/gen"
	"github.com/spcheck/spcheck/serving"
)

// ServingVariant switches the serving loop's variants on a config: the fixed forms by default,
// a catalogue bug when fuzzing for detection.
type ServingVariant func(*serving.Config)

// FixedServing is the post-fix serving loop: the TP-local rank-0 gate, the next-real-bsz
// prediction, state updates on every replica.
func FixedServing(c *serving.Config) {
	c.Gate, c.Predict, c.GateStateUpdates = serving.GateNew, serving.PredictNextRealBsz, false
}

// ServingBug is a named serving-loop bug of FastDeploy's MTP decode loop (FastDeploy #7172):
// the serving property must find it.
type ServingBug struct {
	Name, Summary string
	Variant       ServingVariant
}

// ServingBugs are the serving loop's bug variants, by name (--bug and the mutation score).
var ServingBugs = []ServingBug{
	{"serving.gate-old", "pre-fix emission gate: every TP rank emits under EP (tokens ×tp)",
		func(c *serving.Config) { c.Gate = serving.GateOld }},
	{"serving.gate-global-rank", "new gate fed a global rank: DP groups ≥ 1 never emit",
		func(c *serving.Config) { c.Gate = serving.GateGlobalRank }},
	{"serving.predict-current-step", "next-launch token count predicted from the current step",
		func(c *serving.Config) { c.Predict = serving.PredictCurrentStep }},
	{"serving.gate-state-updates", "the gate's early return also skips the replicas' state updates",
		func(c *serving.Config) { c.GateStateUpdates = true }},
}

// LookupServingBug returns the serving bug called name.
func LookupServingBug(name string) (ServingBug, bool) {
	for _, b := range ServingBugs {
		if b.Name == name {
			return b, true
		}
	}
	return ServingBug{}, false
}

// servingState is the model the stateful property keeps: the mesh and variants and how many
// requests were inserted (for unique ids). The system under test is a *serving.Sim.
type servingState struct {
	cfg      serving.Config
	inserted int
}

// ServingProperty is the stateful decode-loop property: random request arrivals (with short
// first launches and block-step windows) interleaved with decode steps; after every step no
// prediction was below the launch it sized, and once drained every request's tokens were
// emitted exactly once and equal the oracle's greedy decoding.
//
// failed, when not nil, receives the report of every run that breaks a check; when gopter has
// shrunk a failure, the last report it received is the shrunk run's.
func ServingProperty(variant ServingVariant, failed func(serving.Report)) gopter.Prop {
	if failed == nil {
		failed = func(serving.Report) {}
	}
	step, drain := stepCommand(failed), drainCommand(failed)
	return commands.Prop(&commands.ProtoCommands{
		NewSystemUnderTestFunc: func(s commands.State) commands.SystemUnderTest {
			sim, err := serving.New(s.(*servingState).cfg)
			if err != nil {
				panic(fmt.Sprintf("fuzz: generated serving config is invalid: %v", err)) // a generator bug
			}
			return sim
		},
		InitialStateGen: servingInitialState(variant),
		GenCommandFunc: func(s commands.State) gopter.Gen {
			st := s.(*servingState)
			return gen.Weighted([]gen.WeightedGen{
				{Weight: 3, Gen: insertGen(st)},
				{Weight: 4, Gen: gen.Const(step)},
				{Weight: 1, Gen: gen.Const(drain)},
			})
		},
	})
}

// String is the scenario's mesh and speculative setup, as a counterexample shows it.
func (s *servingState) String() string {
	c := s.cfg
	return fmt.Sprintf("serving tp=%d dp=%d k=%d ep=%v seed=%d gate=%s predict=%s gate_state_updates=%v",
		c.TP, c.DP, c.K, c.UseEP, c.Seed, c.Gate, c.Predict, c.GateStateUpdates)
}

func servingInitialState(variant ServingVariant) gopter.Gen {
	return gopter.CombineGens(gen.IntRange(1, 4), gen.IntRange(1, 3), gen.IntRange(0, 3), gen.Bool(), gen.UInt64Range(1, 1<<20)).
		Map(func(v []any) *servingState {
			cfg := serving.Config{TP: v[0].(int), DP: v[1].(int), K: v[2].(int), UseEP: v[3].(bool),
				Vocab: 50, AcceptRate: 0.6, Seed: v[4].(uint64)}
			FixedServing(&cfg)
			variant(&cfg)
			return &servingState{cfg: cfg}
		})
}

// insertGen draws a request. Its arrival and block window are relative to the step at which
// the command runs, so a shrunk command sequence (commands removed) stays valid.
func insertGen(st *servingState) gopter.Gen {
	k := st.cfg.K
	return gopter.CombineGens(gen.IntRange(0, st.cfg.DP-1), gen.IntRange(1, 8), gen.IntRange(0, k+1), gen.IntRange(1, 3), gen.IntRange(0, 2)).
		Map(func(v []any) commands.Command {
			r := serving.Request{ID: fmt.Sprintf("r%d", st.inserted), DP: v[0].(int),
				MaxTokens: v[1].(int), FirstLaunch: v[2].(int)}
			if bs := v[4].(int); bs > 0 {
				r.BlockAt, r.BlockSteps = v[3].(int), bs
			}
			return insertCommand(r)
		})
}

func insertCommand(r serving.Request) commands.Command {
	return &commands.ProtoCommand{
		Name: fmt.Sprintf("Insert(%+v)", r),
		RunFunc: func(sut commands.SystemUnderTest) commands.Result {
			sim := sut.(*serving.Sim)
			r := r
			r.Arrive = sim.StepIndex()
			if r.BlockSteps > 0 {
				r.BlockAt += r.Arrive
			}
			return sim.Insert(r)
		},
		NextStateFunc: func(s commands.State) commands.State {
			st := *s.(*servingState)
			st.inserted++
			return &st
		},
		PostConditionFunc: func(_ commands.State, res commands.Result) *gopter.PropResult {
			if res != nil && res.(error) != nil {
				return &gopter.PropResult{Status: gopter.PropError, Error: res.(error)}
			}
			return &gopter.PropResult{Status: gopter.PropTrue}
		},
	}
}

// stepCommand runs one decode step; afterwards no consumed prediction may be below its launch.
func stepCommand(failed func(serving.Report)) *commands.ProtoCommand {
	return checkedCommand("Step", func(sim *serving.Sim) { sim.Step() }, serving.Report.LaunchOK, failed)
}

// drainCommand steps until every request has stopped (bounded by the sim's step cap) and then
// requires every check to hold: emitted exactly once, equal to the oracle, prediction = actual.
func drainCommand(failed func(serving.Report)) *commands.ProtoCommand {
	return checkedCommand("Drain", func(sim *serving.Sim) {
		for limit := sim.StepCap(); !sim.Done() && sim.StepIndex() < limit; {
			sim.Step()
		}
	}, serving.Report.OK, failed)
}

// checkedCommand runs the loop with run, then requires ok of its report.
func checkedCommand(name string, run func(*serving.Sim), ok func(serving.Report) bool, failed func(serving.Report)) *commands.ProtoCommand {
	return &commands.ProtoCommand{
		Name: name,
		RunFunc: func(sut commands.SystemUnderTest) commands.Result {
			sim := sut.(*serving.Sim)
			run(sim)
			return sim.Report()
		},
		NextStateFunc: func(s commands.State) commands.State { return s },
		PostConditionFunc: func(_ commands.State, res commands.Result) *gopter.PropResult {
			r := res.(serving.Report)
			return verdict(ok(r), r, failed)
		},
	}
}

// verdict is a check's outcome; a failure is labelled with the checks that broke and its
// report goes to failed.
func verdict(ok bool, r serving.Report, failed func(serving.Report)) *gopter.PropResult {
	if ok {
		return &gopter.PropResult{Status: gopter.PropTrue}
	}
	failed(r)
	return &gopter.PropResult{Status: gopter.PropFalse, Labels: []string{fmt.Sprintf("serving checks broken: %v", r.Classes())}}
}
