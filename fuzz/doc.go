// Package fuzz generates parallel plans with gopter, checks properties over them and shrinks a
// failing plan to a minimal one; `spcheck fuzz` is its command line (docs/fuzz.md).
//
// Generators and shrinkers. gopter's stock shrinkers do not survive Map/FlatMap, so plans have
// their own generator (Draw, PlanGen: only valid plans, with the awkward edges — sizes not
// divisible by tp, one layer per stage, one token per shard, length-1 packed sequences —
// drawn often) and shrinker (Simpler, ShrinkPlan: every field moved toward its simplest value,
// validity kept), so counterexamples come out minimal. A Target (the correct simulator, or one
// bug variant) wraps them: with a bug on, the generator draws only plans on which the bug can
// show (the variant's Applies, then a comparison of the compiled programs with and without it)
// and the shrinker keeps the bug key and never leaves such plans.
//
// Properties:
//   - equivalence: every plan verifies against the oracle (Target.Property, no bug);
//   - detection: with a bug on, some plan fails, and its shrunk form is minimal;
//   - collective algebra: every communication region the planner emits (Regions: a forward
//     redistribution and the backward the planner pairs with it, with their layouts) obeys the
//     forward, backward and adjoint (dot-product) laws on the simulator's runtime, and
//     all-gather ∘ reduce-scatter = all-reduce (Laws, CheckAlgebra, AlgebraGen);
//   - serving: a stateful gopter commands model of the decode loop (ServingProperty).
//
// Campaigns. Run runs a campaign: case i draws from a generator seeded by CaseSeed(seed, i),
// so campaigns are deterministic sequences that shards split by index and Merge adds back
// together; counterexamples are saved to a corpus that the next campaign re-runs first.
// Mutation runs detection for every registered bug and serving bug from fresh seeds: the
// mutation score.
package fuzz
