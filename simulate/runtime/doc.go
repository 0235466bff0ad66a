// Package runtime executes the per-rank programs of package ir on CPU ranks: one goroutine per
// rank runs its local ops, and a coordinator completes collectives and point-to-point batches
// with NCCL's semantics.
//
// Determinism: local kernels are pure functions of their inputs, a collective's result is
// computed once from the members' inputs taken in group-rank order (sums accumulate left to
// right in that order, so every member gets the same bits), and a transfer copies bytes. So
// the traced values never depend on goroutine scheduling or GOMAXPROCS.
//
// Matching: collectives on one communicator (group name and ranks) match in issue order, as
// NCCL's do; when every member has arrived, the ops must agree on kind, attributes and shapes
// or Run fails naming the ranks, ops and group. Sends and receives between a pair of ranks
// match in issue order inside p2p batches; a batch completes when all its transfers have. A
// send is a rendezvous (NCCL blocks a send until its receive is posted), so two peers that
// both send and neither receives is a deadlock, reported as such. Run never hangs: when no
// rank can make progress it fails with every blocked rank's op, and a rank that finishes while
// others wait for it is an error naming both.
package runtime
