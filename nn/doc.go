// Package nn holds the float64 op kernels of the reference model, each with its backward:
// linear, RMSNorm, RoPE, causal multi-head attention over packed sequences, SwiGLU, embedding
// lookup, cross-entropy with ignore_index and a loss mask, and the per-sequence roll of MTP.
//
// The oracle is built from these kernels and the simulator calls the very same functions on
// shards, so every kernel works on whatever slice of the problem it is given:
//
//   - Linear on a column shard (rows of W, i.e. some output features) gives those columns of y
//     and a partial dx; on a row shard (columns of W and of x) it gives a partial y.
//   - RMSNorm works on any subset of rows (tokens); its weight gradient is then partial.
//   - RoPE and Attention work on any subset of heads; Attention needs every token of a row.
//   - SwiGLU is element-wise; EmbeddingShard and EmbeddingShardBackward take a vocab range.
//   - Cross-entropy over a vocab shard is RowMax, RowSumExp and TargetLogits (all-reduced MAX,
//     SUM, SUM), TokenCrossEntropyFromParts and CrossEntropyShardBackward.
//
// Conventions: tensors are row-major *tensor.Dense; activations are batch-first [B,S,…]; a
// linear weight is [out,in] like torch.nn.Linear. Kernels are pure functions with no global
// state; every matrix product goes through gemm (gemm.go): a blocked AVX-512 GEMM
// (gemm_blocked.go) that sums every element in the order of gonum's native Go BLAS, so its
// bits are gonum's and do not depend on GOMAXPROCS; gonum itself where the kernels do not apply. Shape misuse by a caller panics with a *ShapeError.
package nn
