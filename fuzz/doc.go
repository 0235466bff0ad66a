// Package fuzz generates parallel plans with gopter, checks properties over them (equivalence
// with the oracle, detection of bug variants, collective algebra, serving invariants) and shrinks
// a failing plan to a minimal one. gopter's stock shrinkers do not survive Map/FlatMap, so plans
// have their own generator and shrinker: the generator draws only valid plans, with the
// awkward edges (sizes not divisible by tp, one layer per stage, one token per shard, length-1
// packed sequences) drawn often; the shrinker moves every field toward its simplest value while
// keeping the plan valid, so counterexamples come out minimal.
package fuzz
