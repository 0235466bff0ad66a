// kernels.cuh: the op kernels of the model on one GPU, in fp32, bf16 (bf16 storage, fp32
// accumulation) and fp64 (the GPU reference: fp64 storage and accumulation, cuBLAS DGEMM),
// forward and backward. Semantics are nn's (Go, float64), read op by op: linear y = x·Wᵀ,
// RMSNorm, RoPE (rotate-half, explicit positions), causal attention inside packed sequences,
// SwiGLU, embedding over a vocab range (+ its scatter-add backward).
// Every matrix product goes through cuBLAS (attention as strided-batched GEMMs over heads);
// the rest are row-parallel kernels. All are deterministic: no atomics, every sum taken in a
// fixed order (block reductions in a fixed tree). Saved statistics (RMSNorm's rstd, attention
// probabilities, the cross-entropy's row statistics) are in stat_dtype: fp32, or fp64 in fp64.
#pragma once

#include <vector>

#include "../host/emit.hpp"
#include "dtensor.cuh"

namespace spx::kern {

// RMSNormEps and RoPEBase: nn.RMSNormEps and nn.RoPEBase.
constexpr double kRMSNormEps = 1e-5;
constexpr double kRoPEBase = 10000.0;

// stat_dtype is the dtype of saved statistics and of the loss for tensors of dtype d.
DType stat_dtype(DType d);

// gemm: row-major C = alpha·op(A)·op(B) + beta·C (nn's gemm), A, B, C of one float dtype.
void gemm(const Gpu& g, DType d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void* a, int64_t lda,
          const void* b, int64_t ldb, double beta, void* c, int64_t ldc);

// generate fills a tensor of dtype d (any float) with a generated starting tensor (emit.hpp's
// GenTensor; rounded to nearest even from float64, exactly as the host uploads values).
DTensor generate(const Gpu& g, const GenTensor& spec, uint64_t seed, DType d, const std::string& what);

// Linear: y[..., out] = x[..., in]·Wᵀ with W [out, in].
DTensor linear(const Gpu& g, const DTensor& x, const DTensor& w);
DTensor linear_grad_input(const Gpu& g, const DTensor& w, const DTensor& dy, const std::vector<int64_t>& x_shape);
DTensor linear_grad_weight(const Gpu& g, const DTensor& x, const DTensor& dy);

// RMSNorm over the last dim: y = x·w·r, r = 1/sqrt(mean(x²)+eps); rstd is stat_dtype [rows].
void rmsnorm(const Gpu& g, const DTensor& x, const DTensor& w, double eps, DTensor* y, DTensor* rstd);
void rmsnorm_backward(const Gpu& g, const DTensor& x, const DTensor& w, const DTensor& rstd, const DTensor& dy, DTensor* dx,
                      DTensor* dw);

// RoPE on x [..., heads, hd] with one position per token (I32 device array of tokens);
// sign +1 forward, −1 backward (the adjoint).
DTensor rope(const Gpu& g, const DTensor& x, const DTensor& pos, int sign);

// Attention over q, k, v [B,S,heads,hd]; cu is an I32 device array of cu_seqlens (one layout for
// every batch row). probs is stat_dtype [B,heads,S,S], zero outside allowed pairs.
void attention(const Gpu& g, const DTensor& q, const DTensor& k, const DTensor& v, const DTensor& cu, DTensor* out,
               DTensor* probs);
void attention_backward(const Gpu& g, const DTensor& q, const DTensor& k, const DTensor& v, const DTensor& probs,
                        const DTensor& dout, const DTensor& cu, DTensor* dq, DTensor* dk, DTensor* dv);

DTensor swiglu(const Gpu& g, const DTensor& gate, const DTensor& up);
void swiglu_backward(const Gpu& g, const DTensor& gate, const DTensor& up, const DTensor& dy, DTensor* dgate, DTensor* dup);

// Embedding of ids (I32, any shape) from table rows [lo, lo+V): rows outside give zeros.
DTensor embedding(const Gpu& g, const DTensor& ids, const DTensor& table, int64_t lo);
// EmbeddingBackward: dtable [V,H] = Σ over tokens whose id is lo+v of dy's row.
DTensor embedding_backward(const Gpu& g, const DTensor& ids, const DTensor& dy, int64_t lo, int64_t vocab_rows);

// Vocab-parallel cross-entropy (simulate/runtime's kernels; Megatron's
// _VocabParallelCrossEntropy). z [..., V] holds vocab columns [offset, offset+valid) in its first
// valid columns; row statistics are stat_dtype(z) [...].
DTensor vocab_max(const Gpu& g, const DTensor& z, int64_t valid);
DTensor vocab_sumexp(const Gpu& g, const DTensor& z, const DTensor& m, int64_t valid);
DTensor vocab_target(const Gpu& g, const DTensor& z, const DTensor& labels, int64_t offset, int64_t valid);
// ce_loss = Σ_i w_i·(m_i + log s_i − t_i) over tokens with w_i ≠ 0: a scalar of the statistics' dtype.
DTensor ce_loss(const Gpu& g, const DTensor& m, const DTensor& s, const DTensor& t, const DTensor& w);
// ce_grad = scale·w_i·(softmax_j − [j = label_i]) on the valid columns, zero elsewhere.
DTensor ce_grad(const Gpu& g, const DTensor& z, const DTensor& m, const DTensor& s, const DTensor& labels, const DTensor& w,
                int64_t offset, int64_t valid, double scale);

// Element-wise helpers on float tensors of equal numel (dtype of the first operand for output).
DTensor add(const Gpu& g, const DTensor& a, const DTensor& b);
DTensor scale(const Gpu& g, const DTensor& a, double s);
void add_into(const Gpu& g, DTensor& acc, const DTensor& b);  // acc += b
// convert casts to dtype d (floats RNE; integer ↔ float exact for the ranges used).
DTensor convert(const Gpu& g, const DTensor& a, DType d);

// copy_block copies a [outer, n, inner] region: dst[o, dst_off + i, :] = src[o, src_off + i, :]
// for i < n, with the dim sizes src_dim and dst_dim (narrow, concat, pad, split are all this).
void copy_block(const Gpu& g, const DTensor& src, int64_t src_dim, int64_t src_off, DTensor& dst, int64_t dst_dim,
                int64_t dst_off, int64_t outer, int64_t n, int64_t inner);
// narrow returns src's rows [start, start+len) of dim.
DTensor narrow(const Gpu& g, const DTensor& src, int dim, int64_t start, int64_t len);
// concat joins tensors along dim.
DTensor concat(const Gpu& g, const std::vector<DTensor>& parts, int dim);

// outer_inner splits a shape around dim: (product before, product after).
void outer_inner(const std::vector<int64_t>& shape, int dim, int64_t* outer, int64_t* inner);

}  // namespace spx::kern
