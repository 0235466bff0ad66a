// Package pipeline is the one home of running a plan and comparing it with its reference:
// plan → executor → candidate trace, oracle → reference trace, verify.Compare → report.
//
// Run takes a plan, its bug variant (resolved by the caller, e.g. from package bugs' catalogue)
// and an executor — the CPU simulator (Simulator), the CUDA/NCCL executor of cuda/ (CUDA), or
// a trace directory written earlier (TraceDir) — and returns an Outcome: the report, the run's
// own failure if the executor refused it (a collective mismatch, a kernel error, a failed GPU
// process), the reference and candidate traces, and the one command that reproduces it.
// Execute is the first half alone (the candidate, no reference).
//
// The CLI (spcheck verify, run, gpu, repro, check), the bug catalogue, the fuzzer and the
// tolerance calibration all run plans through this package, so the simulator itself knows
// nothing of the oracle or the verifier.
package pipeline
