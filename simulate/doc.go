// Package simulate runs a parallel plan (package plan: TP, Megatron- or vLLM-style SP, PP with
// micro-batches and Paddle-style partial P2P, DP, MTP) on CPU ranks, so that a plan's numbers can
// be checked against the oracle without GPUs.
//
// Compile turns the plan into one program per rank in the IR of package simulate/ir — the same
// programs cuda/ executes on GPUs — plus each rank's starting tensors (its parameter shards and
// micro-batch inputs). The planner is written once, SPMD style: a builder emits one rank's
// forward for each micro-batch, with every value typed by its TP placement (replicated, sharded,
// partial), and pushes the matching backward onto a tape; replaying the tape emits the backward,
// each collective's adjoint chosen from the placement of the gradient that reaches it (as in
// Megatron-LM megatron/core/tensor_parallel/mappings.py). Pipeline schedules interleave these per micro-batch, and the gradients are
// finally reduced over TP (SP norms), the embedding group and DP.
//
// Run executes the programs with package simulate/runtime and returns the per-rank trace, every
// tensor with the placement that lets verify reassemble it; Verify compares it with the
// oracle's. docs/ir.md documents the IR, the emitted directory and the layout conventions
// (rank order, groups, SP padding, loss normalisation under DP and micro-batches).
//
// Bug variants (plan.Plan.Bug) are named rewrites of a plan or of its programs; ops carry a Role
// (the Role* constants) so that a rewrite finds, for instance, the rank-aware residual slice or
// the SP norm-grad all-reduce. Compile refuses a bug name it does not know; package bugs
// registers the catalogue, and Variant.Applies says on which plans a bug can show.
//
// Every layer's forward is recorded as a Region; Compiled.Recompute turns on activation
// recompute for chosen regions (ir.Recompute: the forward re-run just before its backward, which
// reads the recomputed activations), and Compiled.TraceRecomputed traces the recomputed
// activations for the recompute-determinism check.
package simulate
