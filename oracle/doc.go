// Package oracle is the trusted single-device reference: a small GPT with multi-token
// prediction, forward and backward written plainly in float64 on the kernels of package nn.
//
// Model (docs/model.md has the formulas, shapes and every traced name): token embedding; L
// pre-norm layers (RMSNorm → q,k,v → RoPE → causal attention inside each packed sequence → o →
// residual; RMSNorm → SwiGLU MLP → residual); final RMSNorm; LM head (tied or not);
// cross-entropy with ignore_index −100 and a loss mask; then D multi-token-prediction depths
// with Megatron-LM/DeepSeek-V3 semantics (per-sequence rolls of ids, labels and mask; enorm,
// hnorm, eh_proj, one transformer layer, the shared final norm and head) and the total loss
// L_main + (λ/D)·Σ_k L_k.
//
// Everything is deterministic: parameters and inputs come from tensor.NewRNG(seed, name)
// indexed by each element's global flat index (model.InitValue, so a rank can generate only its
// shard), and every product goes through package nn's GEMM, which sums each element in gonum's
// native Dgemm order on any number of threads, so the same plan gives the same bits on any
// GOMAXPROCS (and the same bits as a gonum-only build: TestBlockedGemmSameBits).
//
// Run gives every tensor as an ordered Record (forward in the order computed, then backward);
// WriteTrace writes them as a world-1 trace. The oracle is trusted because it is checked
// independently: finite differences of every kernel and of every parameter of a packed MTP
// model, the packed-vs-alone equivalence (ms-swift #6496, Megatron-LM #2173), and oracle/torchref, a PyTorch
// float64 autograd implementation that must match every gradient to 1e-10.
package oracle
