// Package plan defines the one plan every spcheck executor runs: a model configuration (what
// the oracle computes), a parallel configuration (how the simulator and the GPUs split it) and
// an optional bug variant. A plan prints as, and parses from, one line of comma-separated
// key=value pairs, so any failure can be re-run by pasting that line after --plan.
package plan
