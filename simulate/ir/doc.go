// Package ir is the per-rank program representation that the simulator's planner produces and
// that every executor runs: the CPU runtime in simulate/runtime today, the CUDA/NCCL executor in
// cuda/ later. A Program is one rank's straight-line list of ops over a per-rank symbol table
// of tensors:
//
//   - local ops: a named kernel (linear, rmsnorm, attention, …) reading and writing symbols;
//   - collectives: all_reduce, all_gather, reduce_scatter, broadcast and all_gather_flat (the
//     receiver half of Paddle-style partial P2P) over an explicit Group of global ranks given in
//     group-rank order;
//   - p2p: a batch of sends and receives to and from peer ranks, completed together (NCCL's
//     group semantics, PyTorch's batch_isend_irecv);
//   - trace: record a symbol in the rank's trace under a logical name, kind and placement;
//   - free: drop symbols no later op reads.
//
// Programs are plain data: they marshal to JSON (Format, Version) so that a C++ executor can
// read them, and a bug variant is a rewrite of the op list. docs/ir.md is the full reference:
// every op, its operands, attributes and exact semantics.
package ir
