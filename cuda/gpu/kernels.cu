#include "kernels.cuh"

#include <cuda_bf16.h>

#include <cmath>

#include "check.cuh"

namespace spx::kern {

namespace {

using bf16 = __nv_bfloat16;

__device__ __forceinline__ float ld(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const bf16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void st(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(bf16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 1 ? 1 : (b > 65535 ? 65535 : b));
}

// block_sum reduces v over the block in a fixed tree order (deterministic); every thread gets
// the result. buf holds blockDim.x floats.
__device__ float block_sum(float v, float* buf) {
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  float r = buf[0];
  __syncthreads();
  return r;
}

__device__ float block_max(float v, float* buf) {
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] = fmaxf(buf[threadIdx.x], buf[threadIdx.x + s]);
    __syncthreads();
  }
  float r = buf[0];
  __syncthreads();
  return r;
}

#define DISPATCH_FLOAT(dt, T, ...)                                                          \
  switch (dt) {                                                                             \
    case DType::F32: {                                                                      \
      using T = float;                                                                      \
      __VA_ARGS__;                                                                          \
      break;                                                                                \
    }                                                                                       \
    case DType::BF16: {                                                                     \
      using T = bf16;                                                                       \
      __VA_ARGS__;                                                                          \
      break;                                                                                \
    }                                                                                       \
    default: fail(thread_context(), ": kernel needs an F32 or BF16 tensor, got ", dtype_name(dt)); \
  }

void want_float(const char* op, const DTensor& t) {
  if (t.dtype != DType::F32 && t.dtype != DType::BF16)
    fail(thread_context(), ": ", op, ": needs an F32 or BF16 tensor, got ", t.str());
}

void want_same(const char* op, const DTensor& a, const DTensor& b) {
  if (a.dtype != b.dtype) fail(thread_context(), ": ", op, ": dtypes differ: ", a.str(), " and ", b.str());
}

void want_shape(const char* op, bool ok, const std::string& msg) {
  if (!ok) fail(thread_context(), ": ", op, ": ", msg);
}

int64_t last(const DTensor& t) { return t.shape.empty() ? 1 : t.shape.back(); }

}  // namespace

void outer_inner(const std::vector<int64_t>& shape, int dim, int64_t* outer, int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < dim; i++) *outer *= shape[i];
  for (size_t i = dim + 1; i < shape.size(); i++) *inner *= shape[i];
}

// ---- GEMM ----------------------------------------------------------------------------------

void gemm(const Gpu& g, DType d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha, const void* a, int64_t lda,
          const void* b, int64_t ldb, float beta, void* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  cudaDataType_t ct;
  if (d == DType::F32) ct = CUDA_R_32F;
  else if (d == DType::BF16) ct = CUDA_R_16BF;
  else fail(thread_context(), ": gemm on ", dtype_name(d));
  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands.
  CUBLAS_OK(cublasGemmEx(g.blas, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n),
                         static_cast<int>(m), static_cast<int>(k), &alpha, b, ct, static_cast<int>(ldb), a, ct,
                         static_cast<int>(lda), &beta, c, ct, static_cast<int>(ldc), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

DTensor linear(const Gpu& g, const DTensor& x, const DTensor& w) {
  want_float("linear", x);
  want_same("linear", x, w);
  int64_t in = last(x);
  want_shape("linear", w.shape.size() == 2 && w.shape[1] == in && !x.shape.empty(),
             "weight " + w.str() + " is not [out, " + std::to_string(in) + "] for x " + x.str());
  int64_t out = w.shape[0], n = x.numel() / (in ? in : 1);
  if (in == 0) n = numel_of(std::vector<int64_t>(x.shape.begin(), x.shape.end() - 1));
  std::vector<int64_t> ys(x.shape.begin(), x.shape.end() - 1);
  ys.push_back(out);
  DTensor y = dalloc(g, x.dtype, ys, "linear output");
  gemm(g, x.dtype, false, true, n, out, in, 1, x.data(), in, w.data(), in, 0, y.data(), out);
  return y;
}

DTensor linear_grad_input(const Gpu& g, const DTensor& w, const DTensor& dy, const std::vector<int64_t>& x_shape) {
  want_float("linear_grad_input", dy);
  want_same("linear_grad_input", dy, w);
  int64_t out = last(dy);
  want_shape("linear_grad_input", w.shape.size() == 2 && w.shape[0] == out, "weight " + w.str() + " does not match dy " + dy.str());
  int64_t in = w.shape[1], n = numel_of(std::vector<int64_t>(dy.shape.begin(), dy.shape.end() - 1));
  want_shape("linear_grad_input", !x_shape.empty() && x_shape.back() == in && numel_of(x_shape) == n * in,
             "x shape " + shape_str(x_shape) + " does not match dy " + dy.str() + " and weight " + w.str());
  DTensor dx = dalloc(g, dy.dtype, x_shape, "linear input grad");
  gemm(g, dy.dtype, false, false, n, in, out, 1, dy.data(), out, w.data(), in, 0, dx.data(), in);
  return dx;
}

DTensor linear_grad_weight(const Gpu& g, const DTensor& x, const DTensor& dy) {
  want_float("linear_grad_weight", x);
  want_same("linear_grad_weight", x, dy);
  int64_t in = last(x), out = last(dy);
  int64_t n = numel_of(std::vector<int64_t>(x.shape.begin(), x.shape.end() - 1));
  int64_t m = numel_of(std::vector<int64_t>(dy.shape.begin(), dy.shape.end() - 1));
  want_shape("linear_grad_weight", n == m, "x " + x.str() + " and dy " + dy.str() + " have different token counts");
  DTensor dw = dalloc(g, x.dtype, {out, in}, "linear weight grad");
  gemm(g, x.dtype, true, false, out, in, n, 1, dy.data(), out, x.data(), in, 0, dw.data(), in);
  return dw;
}

// ---- RMSNorm -------------------------------------------------------------------------------

template <typename T>
__global__ void rmsnorm_fwd_k(const T* x, const T* w, T* y, float* rstd, int64_t h, float eps) {
  __shared__ float buf[kThreads];
  int64_t r = blockIdx.x;
  const T* xr = x + r * h;
  float ss = 0;
  for (int64_t j = threadIdx.x; j < h; j += blockDim.x) {
    float v = ld(xr, j);
    ss += v * v;
  }
  ss = block_sum(ss, buf);
  float rs = 1.0f / sqrtf(ss / static_cast<float>(h) + eps);
  if (threadIdx.x == 0) rstd[r] = rs;
  for (int64_t j = threadIdx.x; j < h; j += blockDim.x) st(y, r * h + j, ld(xr, j) * rs * ld(w, j));
}

template <typename T>
__global__ void rmsnorm_bwd_dx_k(const T* x, const T* w, const float* rstd, const T* dy, T* dx, int64_t h) {
  __shared__ float buf[kThreads];
  int64_t r = blockIdx.x;
  float rs = rstd[r];
  float dot = 0;
  for (int64_t j = threadIdx.x; j < h; j += blockDim.x) dot += ld(dy, r * h + j) * ld(w, j) * ld(x, r * h + j);
  dot = block_sum(dot, buf);
  float c = rs * rs * rs * dot / static_cast<float>(h);
  for (int64_t j = threadIdx.x; j < h; j += blockDim.x)
    st(dx, r * h + j, rs * ld(dy, r * h + j) * ld(w, j) - ld(x, r * h + j) * c);
}

template <typename T>
__global__ void rmsnorm_bwd_dw_k(const T* x, const float* rstd, const T* dy, T* dw, int64_t rows, int64_t h) {
  for (int64_t j = blockIdx.x * blockDim.x + threadIdx.x; j < h; j += gridDim.x * blockDim.x) {
    float acc = 0;
    for (int64_t r = 0; r < rows; r++) acc += ld(dy, r * h + j) * ld(x, r * h + j) * rstd[r];
    st(dw, j, acc);
  }
}

void rmsnorm(const Gpu& g, const DTensor& x, const DTensor& w, double eps, DTensor* y, DTensor* rstd) {
  want_float("rmsnorm", x);
  want_same("rmsnorm", x, w);
  int64_t h = last(x), rows = h ? x.numel() / h : 0;
  want_shape("rmsnorm", w.shape.size() == 1 && w.shape[0] == h, "weight " + w.str() + " is not [" + std::to_string(h) + "]");
  *y = dalloc(g, x.dtype, x.shape, "rmsnorm output");
  *rstd = dalloc(g, DType::F32, {rows}, "rmsnorm rstd");
  if (rows == 0) return;
  DISPATCH_FLOAT(x.dtype, T,
                 rmsnorm_fwd_k<T><<<rows, kThreads, 0, g.stream>>>(x.as<T>(), w.as<T>(), y->as<T>(), rstd->as<float>(), h,
                                                                   static_cast<float>(eps)));
  KERNEL_OK("rmsnorm");
}

void rmsnorm_backward(const Gpu& g, const DTensor& x, const DTensor& w, const DTensor& rstd, const DTensor& dy, DTensor* dx,
                      DTensor* dw) {
  want_float("rmsnorm_backward", x);
  want_same("rmsnorm_backward", x, w);
  want_same("rmsnorm_backward", x, dy);
  int64_t h = last(x), rows = h ? x.numel() / h : 0;
  want_shape("rmsnorm_backward", dy.shape == x.shape && w.shape.size() == 1 && w.shape[0] == h && rstd.numel() == rows &&
                                     rstd.dtype == DType::F32,
             "x " + x.str() + ", w " + w.str() + ", rstd " + rstd.str() + ", dy " + dy.str() + " do not fit");
  *dx = dalloc(g, x.dtype, x.shape, "rmsnorm input grad");
  *dw = dalloc(g, x.dtype, {h}, "rmsnorm weight grad");
  if (rows == 0) return;
  DISPATCH_FLOAT(x.dtype, T, {
    rmsnorm_bwd_dx_k<T><<<rows, kThreads, 0, g.stream>>>(x.as<T>(), w.as<T>(), rstd.as<float>(), dy.as<T>(), dx->as<T>(), h);
    rmsnorm_bwd_dw_k<T><<<blocks_for(h), kThreads, 0, g.stream>>>(x.as<T>(), rstd.as<float>(), dy.as<T>(), dw->as<T>(), rows, h);
  });
  KERNEL_OK("rmsnorm_backward");
}

// ---- RoPE ----------------------------------------------------------------------------------

template <typename T>
__global__ void rope_k(const T* x, const int* pos, T* y, int64_t tokens, int64_t heads, int64_t hd, double base, double sign) {
  int64_t half = hd / 2, n = tokens * heads * half;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t j = i % half, th = i / half, t = th / heads;
    double inv = 1.0 / pow(base, static_cast<double>(2 * j) / static_cast<double>(hd));
    double a = static_cast<double>(pos[t]) * inv;
    float c = static_cast<float>(cos(a)), s = static_cast<float>(sign * sin(a));
    int64_t off = th * hd;
    float x1 = ld(x, off + j), x2 = ld(x, off + j + half);
    st(y, off + j, x1 * c - x2 * s);
    st(y, off + j + half, x2 * c + x1 * s);
  }
}

DTensor rope(const Gpu& g, const DTensor& x, const DTensor& pos, int sign) {
  want_float("rope", x);
  want_shape("rope", x.shape.size() >= 3 && last(x) % 2 == 0, "want [..., heads, even hd], got " + x.str());
  int64_t hd = x.shape.back(), heads = x.shape[x.shape.size() - 2];
  int64_t tokens = (heads * hd) != 0 ? x.numel() / (heads * hd) : 0;
  want_shape("rope", pos.dtype == DType::I32 && pos.numel() == tokens,
             pos.str() + " positions for " + std::to_string(tokens) + " tokens of " + x.str());
  DTensor y = dalloc(g, x.dtype, x.shape, "rope output");
  if (x.numel() == 0) return y;
  DISPATCH_FLOAT(x.dtype, T,
                 rope_k<T><<<blocks_for(x.numel() / 2), kThreads, 0, g.stream>>>(x.as<T>(), pos.as<int>(), y.as<T>(), tokens,
                                                                                 heads, hd, kRoPEBase, sign));
  KERNEL_OK("rope");
  return y;
}

// ---- Attention -----------------------------------------------------------------------------

// segment finds the packed sequence [lo, hi) holding position i. A position outside every
// sequence (past cu[-1] when cu_seqlens ends before the row, as flash-attn varlen allows) gets
// the empty range lo = i+1, hi = i: as a query it attends to nothing and as a key nothing
// attends to it, so its output, probabilities and gradients are 0 (docs/ir.md, nn.Attention).
__device__ void segment(const int* cu, int ncu, int64_t i, int64_t* lo, int64_t* hi) {
  *lo = i + 1;
  *hi = i;
  for (int t = 1; t < ncu; t++)
    if (i >= cu[t - 1] && i < cu[t]) {
      *lo = cu[t - 1];
      *hi = cu[t];
      return;
    }
}

// attn_fwd_k: one block per (query row i, head h, batch row b).
template <typename T>
__global__ void attn_fwd_k(const T* q, const T* k, const T* v, const int* cu, int ncu, T* out, float* probs, int64_t S,
                           int64_t H, int64_t hd, float scale) {
  __shared__ float buf[kThreads];
  int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  int64_t ld_ = H * hd;
  int64_t lo, hi;
  segment(cu, ncu, i, &lo, &hi);
  float* p = probs + ((b * H + h) * S + i) * S;
  const T* qi = q + (b * S + i) * ld_ + h * hd;
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x) {
    float s = 0;
    if (j >= lo && j <= i) {
      const T* kj = k + (b * S + j) * ld_ + h * hd;
      for (int64_t d = 0; d < hd; d++) s += ld(qi, d) * ld(kj, d);
      s *= scale;
    }
    p[j] = s;
  }
  __syncthreads();
  float m = -INFINITY;
  for (int64_t j = lo + threadIdx.x; j <= i; j += blockDim.x) m = fmaxf(m, p[j]);
  m = block_max(m, buf);
  float sum = 0;
  for (int64_t j = lo + threadIdx.x; j <= i; j += blockDim.x) {
    float e = expf(p[j] - m);
    p[j] = e;
    sum += e;
  }
  sum = block_sum(sum, buf);  // block_sum's barriers also order the writes to p above
  for (int64_t j = lo + threadIdx.x; j <= i; j += blockDim.x) p[j] /= sum;
  __syncthreads();
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float acc = 0;
    for (int64_t j = lo; j <= i; j++) acc += p[j] * ld(v, (b * S + j) * ld_ + h * hd + d);
    st(out, (b * S + i) * ld_ + h * hd + d, acc);
  }
}

// attn_ds_k: dS[i, j] = P[i,j]·(dP[i,j] − Σ_j P∘dP) with dP = dout_i·v_j, one block per row.
template <typename T>
__global__ void attn_ds_k(const T* v, const float* probs, const T* dout, const int* cu, int ncu, float* ds, int64_t S,
                          int64_t H, int64_t hd) {
  __shared__ float buf[kThreads];
  int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  int64_t ld_ = H * hd;
  int64_t lo, hi;
  segment(cu, ncu, i, &lo, &hi);
  const float* p = probs + ((b * H + h) * S + i) * S;
  float* dsr = ds + ((b * H + h) * S + i) * S;
  const T* di = dout + (b * S + i) * ld_ + h * hd;
  float dot = 0;
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x) {
    float dp = 0;
    if (j >= lo && j <= i) {
      const T* vj = v + (b * S + j) * ld_ + h * hd;
      for (int64_t d = 0; d < hd; d++) dp += ld(di, d) * ld(vj, d);
      dot += p[j] * dp;
    }
    dsr[j] = dp;
  }
  dot = block_sum(dot, buf);
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x) dsr[j] = (j >= lo && j <= i) ? p[j] * (dsr[j] - dot) : 0.0f;
}

// attn_grads_k: for position t, dq_t (t as query) and dk_t, dv_t (t as key), one block each.
template <typename T>
__global__ void attn_grads_k(const T* q, const T* k, const float* probs, const T* dout, const float* ds, const int* cu,
                             int ncu, T* dq, T* dk, T* dv, int64_t S, int64_t H, int64_t hd, float scale) {
  int64_t t = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  int64_t ld_ = H * hd;
  int64_t lo, hi;
  segment(cu, ncu, t, &lo, &hi);
  const float* dsb = ds + (b * H + h) * S * S;
  const float* pb = probs + (b * H + h) * S * S;
  for (int64_t d = threadIdx.x; d < hd; d += blockDim.x) {
    float aq = 0, ak = 0, av = 0;
    for (int64_t j = lo; j <= t; j++) aq += dsb[t * S + j] * ld(k, (b * S + j) * ld_ + h * hd + d);
    for (int64_t i = t; i < hi; i++) {
      ak += dsb[i * S + t] * ld(q, (b * S + i) * ld_ + h * hd + d);
      av += pb[i * S + t] * ld(dout, (b * S + i) * ld_ + h * hd + d);
    }
    int64_t o = (b * S + t) * ld_ + h * hd + d;
    st(dq, o, aq * scale);
    st(dk, o, ak * scale);
    st(dv, o, av);
  }
}

namespace {
void attn_check(const char* op, const DTensor& q, const DTensor& k, const DTensor& v, const DTensor& cu) {
  want_float(op, q);
  want_same(op, q, k);
  want_same(op, q, v);
  want_shape(op, q.shape.size() == 4 && k.shape == q.shape && v.shape == q.shape,
             "want q, k, v [B,S,heads,hd] of one shape, got " + q.str() + ", " + k.str() + ", " + v.str());
  want_shape(op, cu.dtype == DType::I32 && cu.shape.size() == 1 && cu.numel() >= 2, "cu_seqlens " + cu.str() + " is not an I32 list");
}
}  // namespace

void attention(const Gpu& g, const DTensor& q, const DTensor& k, const DTensor& v, const DTensor& cu, DTensor* out,
               DTensor* probs) {
  attn_check("attention", q, k, v, cu);
  int64_t B = q.shape[0], S = q.shape[1], H = q.shape[2], hd = q.shape[3];
  *out = dalloc(g, q.dtype, q.shape, "attention output");
  *probs = dalloc(g, DType::F32, {B, H, S, S}, "attention probs");
  if (q.numel() == 0) return;
  float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  dim3 grid(S, H, B);
  DISPATCH_FLOAT(q.dtype, T,
                 attn_fwd_k<T><<<grid, 128, 0, g.stream>>>(q.as<T>(), k.as<T>(), v.as<T>(), cu.as<int>(), cu.numel(), out->as<T>(),
                                                           probs->as<float>(), S, H, hd, scale));
  KERNEL_OK("attention");
}

void attention_backward(const Gpu& g, const DTensor& q, const DTensor& k, const DTensor& v, const DTensor& probs,
                        const DTensor& dout, const DTensor& cu, DTensor* dq, DTensor* dk, DTensor* dv) {
  attn_check("attention_backward", q, k, v, cu);
  want_same("attention_backward", q, dout);
  int64_t B = q.shape[0], S = q.shape[1], H = q.shape[2], hd = q.shape[3];
  want_shape("attention_backward",
             dout.shape == q.shape && probs.dtype == DType::F32 && probs.shape == std::vector<int64_t>{B, H, S, S},
             "dout " + dout.str() + " / probs " + probs.str() + " do not fit q " + q.str());
  *dq = dalloc(g, q.dtype, q.shape, "attention dq");
  *dk = dalloc(g, q.dtype, q.shape, "attention dk");
  *dv = dalloc(g, q.dtype, q.shape, "attention dv");
  if (q.numel() == 0) return;
  DTensor ds = dalloc(g, DType::F32, {B, H, S, S}, "attention dS");
  float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(hd)));
  dim3 grid(S, H, B);
  DISPATCH_FLOAT(q.dtype, T, {
    attn_ds_k<T><<<grid, 128, 0, g.stream>>>(v.as<T>(), probs.as<float>(), dout.as<T>(), cu.as<int>(), cu.numel(), ds.as<float>(), S,
                                             H, hd);
    attn_grads_k<T><<<grid, 64, 0, g.stream>>>(q.as<T>(), k.as<T>(), probs.as<float>(), dout.as<T>(), ds.as<float>(), cu.as<int>(),
                                               cu.numel(), dq->as<T>(), dk->as<T>(), dv->as<T>(), S, H, hd, scale);
  });
  KERNEL_OK("attention_backward");
}

// ---- SwiGLU --------------------------------------------------------------------------------

__device__ __forceinline__ float sigmoidf_(float x) {
  if (x >= 0) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

template <typename T>
__global__ void swiglu_k(const T* gate, const T* up, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float gv = ld(gate, i);
    st(y, i, gv * sigmoidf_(gv) * ld(up, i));
  }
}

template <typename T>
__global__ void swiglu_bwd_k(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float gv = ld(gate, i), sg = sigmoidf_(gv), d = ld(dy, i);
    st(dup, i, d * gv * sg);
    st(dgate, i, d * ld(up, i) * sg * (1.0f + gv * (1.0f - sg)));
  }
}

DTensor swiglu(const Gpu& g, const DTensor& gate, const DTensor& up) {
  want_float("swiglu", gate);
  want_same("swiglu", gate, up);
  want_shape("swiglu", gate.shape == up.shape, "gate " + gate.str() + " and up " + up.str() + " differ");
  DTensor y = dalloc(g, gate.dtype, gate.shape, "swiglu output");
  if (!gate.numel()) return y;
  DISPATCH_FLOAT(gate.dtype, T,
                 swiglu_k<T><<<blocks_for(gate.numel()), kThreads, 0, g.stream>>>(gate.as<T>(), up.as<T>(), y.as<T>(), gate.numel()));
  KERNEL_OK("swiglu");
  return y;
}

void swiglu_backward(const Gpu& g, const DTensor& gate, const DTensor& up, const DTensor& dy, DTensor* dgate, DTensor* dup) {
  want_float("swiglu_backward", gate);
  want_same("swiglu_backward", gate, up);
  want_same("swiglu_backward", gate, dy);
  want_shape("swiglu_backward", gate.shape == up.shape && gate.shape == dy.shape, "gate, up, dy shapes differ");
  *dgate = dalloc(g, gate.dtype, gate.shape, "swiglu dgate");
  *dup = dalloc(g, gate.dtype, gate.shape, "swiglu dup");
  if (!gate.numel()) return;
  DISPATCH_FLOAT(gate.dtype, T,
                 swiglu_bwd_k<T><<<blocks_for(gate.numel()), kThreads, 0, g.stream>>>(gate.as<T>(), up.as<T>(), dy.as<T>(),
                                                                                       dgate->as<T>(), dup->as<T>(), gate.numel()));
  KERNEL_OK("swiglu_backward");
}

// ---- Embedding -----------------------------------------------------------------------------

template <typename T>
__global__ void embed_k(const int* ids, const T* table, T* out, int64_t tokens, int64_t rows, int64_t h, int64_t lo) {
  int64_t n = tokens * h;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t t = i / h, c = i % h, r = static_cast<int64_t>(ids[t]) - lo;
    st(out, i, (r >= 0 && r < rows) ? ld(table, r * h + c) : 0.0f);
  }
}

template <typename T>
__global__ void embed_bwd_k(const int* ids, const T* dy, T* dtable, int64_t tokens, int64_t rows, int64_t h, int64_t lo) {
  int64_t n = rows * h;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t r = i / h, c = i % h;
    float acc = 0;
    for (int64_t t = 0; t < tokens; t++)
      if (static_cast<int64_t>(ids[t]) - lo == r) acc += ld(dy, t * h + c);
    st(dtable, i, acc);
  }
}

DTensor embedding(const Gpu& g, const DTensor& ids, const DTensor& table, int64_t lo) {
  want_float("embedding", table);
  want_shape("embedding", ids.dtype == DType::I32 && table.shape.size() == 2, "ids " + ids.str() + " / table " + table.str());
  int64_t rows = table.shape[0], h = table.shape[1];
  std::vector<int64_t> os = ids.shape;
  os.push_back(h);
  DTensor out = dalloc(g, table.dtype, os, "embedding output");
  if (!out.numel()) return out;
  DISPATCH_FLOAT(table.dtype, T,
                 embed_k<T><<<blocks_for(out.numel()), kThreads, 0, g.stream>>>(ids.as<int>(), table.as<T>(), out.as<T>(), ids.numel(),
                                                                               rows, h, lo));
  KERNEL_OK("embedding");
  return out;
}

DTensor embedding_backward(const Gpu& g, const DTensor& ids, const DTensor& dy, int64_t lo, int64_t vocab_rows) {
  want_float("embedding_backward", dy);
  int64_t h = last(dy);
  want_shape("embedding_backward", ids.dtype == DType::I32 && dy.numel() == ids.numel() * h,
             "ids " + ids.str() + " do not fit dy " + dy.str());
  DTensor dt = dalloc(g, dy.dtype, {vocab_rows, h}, "embedding grad");
  if (!dt.numel()) return dt;
  DISPATCH_FLOAT(dy.dtype, T,
                 embed_bwd_k<T><<<blocks_for(dt.numel()), kThreads, 0, g.stream>>>(ids.as<int>(), dy.as<T>(), dt.as<T>(), ids.numel(),
                                                                                   vocab_rows, h, lo));
  KERNEL_OK("embedding_backward");
  return dt;
}

// ---- Element-wise and data movement --------------------------------------------------------

template <typename T, typename U>
__global__ void add_k(const T* a, const U* b, T* y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    st(y, i, ld(a, i) + ld(b, i));
}

template <typename T>
__global__ void scale_k(const T* a, T* y, float s, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    st(y, i, ld(a, i) * s);
}

DTensor add(const Gpu& g, const DTensor& a, const DTensor& b) {
  want_float("add", a);
  want_same("add", a, b);
  want_shape("add", a.numel() == b.numel(), a.str() + " + " + b.str());
  DTensor y = dalloc(g, a.dtype, a.shape, "add output");
  if (!a.numel()) return y;
  DISPATCH_FLOAT(a.dtype, T, add_k<T, T><<<blocks_for(a.numel()), kThreads, 0, g.stream>>>(a.as<T>(), b.as<T>(), y.as<T>(), a.numel()));
  KERNEL_OK("add");
  return y;
}

void add_into(const Gpu& g, DTensor& acc, const DTensor& b) {
  want_float("add_into", acc);
  want_same("add_into", acc, b);
  want_shape("add_into", acc.numel() == b.numel(), acc.str() + " += " + b.str());
  if (!acc.numel()) return;
  DISPATCH_FLOAT(acc.dtype, T,
                 add_k<T, T><<<blocks_for(acc.numel()), kThreads, 0, g.stream>>>(acc.as<T>(), b.as<T>(), acc.as<T>(), acc.numel()));
  KERNEL_OK("add_into");
}

DTensor scale(const Gpu& g, const DTensor& a, double s) {
  want_float("scale", a);
  DTensor y = dalloc(g, a.dtype, a.shape, "scale output");
  if (!a.numel()) return y;
  DISPATCH_FLOAT(a.dtype, T,
                 scale_k<T><<<blocks_for(a.numel()), kThreads, 0, g.stream>>>(a.as<T>(), y.as<T>(), static_cast<float>(s), a.numel()));
  KERNEL_OK("scale");
  return y;
}

namespace {
template <typename T>
__device__ __forceinline__ double ldd(const T* p, int64_t i) { return static_cast<double>(p[i]); }
template <>
__device__ __forceinline__ double ldd<bf16>(const bf16* p, int64_t i) { return __bfloat162float(p[i]); }
template <typename T>
__device__ __forceinline__ void std_(T* p, int64_t i, double v) { p[i] = static_cast<T>(v); }
template <>
__device__ __forceinline__ void std_<bf16>(bf16* p, int64_t i, double v) { p[i] = __double2bfloat16(v); }
template <>
__device__ __forceinline__ void std_<float>(float* p, int64_t i, double v) { p[i] = __double2float_rn(v); }
template <>
__device__ __forceinline__ void std_<int>(int* p, int64_t i, double v) { p[i] = static_cast<int>(rint(v)); }
template <>
__device__ __forceinline__ void std_<long long>(long long* p, int64_t i, double v) { p[i] = static_cast<long long>(rint(v)); }

template <typename S, typename D>
__global__ void convert_k(const S* a, D* y, int64_t n) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    std_(y, i, ldd(a, i));
}

#define DISPATCH_ANY(dt, T, ...)                    \
  switch (dt) {                                     \
    case DType::F64: { using T = double; __VA_ARGS__; break; } \
    case DType::F32: { using T = float; __VA_ARGS__; break; }  \
    case DType::BF16: { using T = bf16; __VA_ARGS__; break; }  \
    case DType::I64: { using T = long long; __VA_ARGS__; break; } \
    case DType::I32: { using T = int; __VA_ARGS__; break; }    \
    default: fail(thread_context(), ": convert: unsupported dtype ", dtype_name(dt)); \
  }
}  // namespace

DTensor convert(const Gpu& g, const DTensor& a, DType d) {
  DTensor y = dalloc(g, d, a.shape, "converted tensor");
  if (!a.numel()) return y;
  DISPATCH_ANY(a.dtype, S, DISPATCH_ANY(d, D, (convert_k<S, D><<<blocks_for(a.numel()), kThreads, 0, g.stream>>>(a.as<S>(), y.as<D>(), a.numel()))));
  KERNEL_OK("convert");
  return y;
}

__global__ void copy_block_k(const uint8_t* src, int64_t src_dim, int64_t src_off, uint8_t* dst, int64_t dst_dim, int64_t dst_off,
                             int64_t outer, int64_t n, int64_t inner_bytes) {
  int64_t total = outer * n * inner_bytes;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t byte = i % inner_bytes, r = i / inner_bytes, row = r % n, o = r / n;
    dst[(o * dst_dim + dst_off + row) * inner_bytes + byte] = src[(o * src_dim + src_off + row) * inner_bytes + byte];
  }
}

void copy_block(const Gpu& g, const DTensor& src, int64_t src_dim, int64_t src_off, DTensor& dst, int64_t dst_dim, int64_t dst_off,
                int64_t outer, int64_t n, int64_t inner) {
  want_same("copy_block", src, dst);
  want_shape("copy_block",
             src_off >= 0 && dst_off >= 0 && src_off + n <= src_dim && dst_off + n <= dst_dim && outer * src_dim * inner == src.numel() &&
                 outer * dst_dim * inner == dst.numel(),
             "block [" + std::to_string(src_off) + "+" + std::to_string(n) + "] of " + src.str() + " into [" + std::to_string(dst_off) +
                 "] of " + dst.str());
  int64_t total = outer * n * inner * static_cast<int64_t>(dtype_size(src.dtype));
  if (!total) return;
  copy_block_k<<<blocks_for(total), kThreads, 0, g.stream>>>(src.as<uint8_t>(), src_dim, src_off, dst.as<uint8_t>(), dst_dim, dst_off, outer, n,
                                                             inner * static_cast<int64_t>(dtype_size(src.dtype)));
  KERNEL_OK("copy_block");
}

DTensor narrow(const Gpu& g, const DTensor& src, int dim, int64_t start, int64_t len) {
  want_shape("narrow", dim >= 0 && dim < static_cast<int>(src.shape.size()) && start >= 0 && len >= 0 && start + len <= src.shape[dim],
             "rows [" + std::to_string(start) + ", " + std::to_string(start + len) + ") of dim " + std::to_string(dim) + " of " + src.str());
  std::vector<int64_t> s = src.shape;
  s[dim] = len;
  DTensor y = dalloc(g, src.dtype, s, "narrowed tensor");
  int64_t outer, inner;
  outer_inner(src.shape, dim, &outer, &inner);
  copy_block(g, src, src.shape[dim], start, y, len, 0, outer, len, inner);
  return y;
}

DTensor concat(const Gpu& g, const std::vector<DTensor>& parts, int dim) {
  want_shape("concat", !parts.empty(), "no tensors");
  std::vector<int64_t> s = parts[0].shape;
  want_shape("concat", dim >= 0 && dim < static_cast<int>(s.size()), "dim " + std::to_string(dim) + " of " + parts[0].str());
  int64_t total = 0;
  for (const auto& p : parts) {
    bool ok = p.shape.size() == s.size() && p.dtype == parts[0].dtype;
    for (size_t i = 0; ok && i < s.size(); i++) ok = (static_cast<int>(i) == dim) || p.shape[i] == s[i];
    want_shape("concat", ok, p.str() + " does not fit " + parts[0].str() + " on dim " + std::to_string(dim));
    total += p.shape[dim];
  }
  s[dim] = total;
  DTensor y = dalloc(g, parts[0].dtype, s, "concatenated tensor");
  int64_t outer, inner, off = 0;
  outer_inner(s, dim, &outer, &inner);
  for (const auto& p : parts) {
    copy_block(g, p, p.shape[dim], 0, y, total, off, outer, p.shape[dim], inner);
    off += p.shape[dim];
  }
  return y;
}

}  // namespace spx::kern

// ---- Vocab-parallel cross-entropy ----------------------------------------------------------

namespace spx::kern {

namespace {
void ce_rows(const char* op, const DTensor& z, int64_t valid, int64_t* rows, int64_t* v) {
  want_float(op, z);
  want_shape(op, !z.shape.empty() && valid >= 0 && valid <= z.shape.back(),
             std::to_string(valid) + " valid vocab columns in logits " + z.str());
  *v = z.shape.back();
  *rows = *v ? z.numel() / *v : numel_of(std::vector<int64_t>(z.shape.begin(), z.shape.end() - 1));
}

std::vector<int64_t> row_shape(const DTensor& z) { return std::vector<int64_t>(z.shape.begin(), z.shape.end() - 1); }

void want_rows(const char* op, const DTensor& t, int64_t rows, DType d) {
  want_shape(op, t.numel() == rows && t.dtype == d, t.str() + " is not " + dtype_name(d) + " with " + std::to_string(rows) + " rows");
}

template <typename T>
__global__ void vocab_max_k(const T* z, float* m, int64_t rows, int64_t v, int64_t valid) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows; r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float best = -INFINITY;
    for (int64_t j = 0; j < valid; j++) best = fmaxf(best, ld(z, r * v + j));
    m[r] = best;
  }
}

template <typename T>
__global__ void vocab_sumexp_k(const T* z, const float* m, float* s, int64_t rows, int64_t v, int64_t valid) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows; r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    float sum = 0;
    for (int64_t j = 0; j < valid; j++) sum += expf(ld(z, r * v + j) - m[r]);
    s[r] = sum;
  }
}

template <typename T>
__global__ void vocab_target_k(const T* z, const int* labels, float* t, int64_t rows, int64_t v, int64_t offset, int64_t valid) {
  for (int64_t r = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; r < rows; r += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t c = static_cast<int64_t>(labels[r]) - offset;
    t[r] = (c >= 0 && c < valid) ? ld(z, r * v + c) : 0.0f;
  }
}

// ce_loss_k sums in token order on one thread: deterministic, and the token counts are small.
__global__ void ce_loss_k(const float* m, const float* s, const float* t, const float* w, float* loss, int64_t n) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  float acc = 0;
  for (int64_t i = 0; i < n; i++)
    if (w[i] != 0) acc += w[i] * (m[i] + logf(s[i]) - t[i]);
  *loss = acc;
}

template <typename T>
__global__ void ce_grad_k(const T* z, const float* m, const float* s, const int* labels, const float* w, T* dz, int64_t rows,
                          int64_t v, int64_t offset, int64_t valid, float scale) {
  int64_t n = rows * v;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n; i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t r = i / v, j = i % v;
    float c = scale * w[r], out = 0;
    if (c != 0 && j < valid) {
      out = c * expf(ld(z, i) - m[r]) / s[r];
      if (j == static_cast<int64_t>(labels[r]) - offset) out -= c;
    }
    st(dz, i, out);
  }
}
}  // namespace

DTensor vocab_max(const Gpu& g, const DTensor& z, int64_t valid) {
  int64_t rows, v;
  ce_rows("vocab_max", z, valid, &rows, &v);
  DTensor m = dalloc(g, DType::F32, row_shape(z), "vocab_max output");
  if (!rows) return m;
  DISPATCH_FLOAT(z.dtype, T, vocab_max_k<T><<<blocks_for(rows), kThreads, 0, g.stream>>>(z.as<T>(), m.as<float>(), rows, v, valid));
  KERNEL_OK("vocab_max");
  return m;
}

DTensor vocab_sumexp(const Gpu& g, const DTensor& z, const DTensor& m, int64_t valid) {
  int64_t rows, v;
  ce_rows("vocab_sumexp", z, valid, &rows, &v);
  want_rows("vocab_sumexp", m, rows, DType::F32);
  DTensor s = dalloc(g, DType::F32, row_shape(z), "vocab_sumexp output");
  if (!rows) return s;
  DISPATCH_FLOAT(z.dtype, T,
                 vocab_sumexp_k<T><<<blocks_for(rows), kThreads, 0, g.stream>>>(z.as<T>(), m.as<float>(), s.as<float>(), rows, v, valid));
  KERNEL_OK("vocab_sumexp");
  return s;
}

DTensor vocab_target(const Gpu& g, const DTensor& z, const DTensor& labels, int64_t offset, int64_t valid) {
  int64_t rows, v;
  ce_rows("vocab_target", z, valid, &rows, &v);
  want_rows("vocab_target", labels, rows, DType::I32);
  DTensor t = dalloc(g, DType::F32, row_shape(z), "vocab_target output");
  if (!rows) return t;
  DISPATCH_FLOAT(z.dtype, T,
                 vocab_target_k<T><<<blocks_for(rows), kThreads, 0, g.stream>>>(z.as<T>(), labels.as<int>(), t.as<float>(), rows, v,
                                                                                 offset, valid));
  KERNEL_OK("vocab_target");
  return t;
}

DTensor ce_loss(const Gpu& g, const DTensor& m, const DTensor& s, const DTensor& t, const DTensor& w) {
  int64_t n = m.numel();
  for (const DTensor* x : {&m, &s, &t, &w}) want_rows("ce_loss", *x, n, DType::F32);
  DTensor loss = dalloc(g, DType::F32, {}, "ce_loss output");
  ce_loss_k<<<1, 1, 0, g.stream>>>(m.as<float>(), s.as<float>(), t.as<float>(), w.as<float>(), loss.as<float>(), n);
  KERNEL_OK("ce_loss");
  return loss;
}

DTensor ce_grad(const Gpu& g, const DTensor& z, const DTensor& m, const DTensor& s, const DTensor& labels, const DTensor& w,
                int64_t offset, int64_t valid, double scale) {
  int64_t rows, v;
  ce_rows("ce_grad", z, valid, &rows, &v);
  want_rows("ce_grad", m, rows, DType::F32);
  want_rows("ce_grad", s, rows, DType::F32);
  want_rows("ce_grad", w, rows, DType::F32);
  want_rows("ce_grad", labels, rows, DType::I32);
  DTensor dz = dalloc(g, z.dtype, z.shape, "ce_grad output");
  if (!z.numel()) return dz;
  DISPATCH_FLOAT(z.dtype, T,
                 ce_grad_k<T><<<blocks_for(z.numel()), kThreads, 0, g.stream>>>(z.as<T>(), m.as<float>(), s.as<float>(), labels.as<int>(),
                                                                                w.as<float>(), dz.as<T>(), rows, v, offset, valid,
                                                                                static_cast<float>(scale)));
  KERNEL_OK("ce_grad");
  return dz;
}

}  // namespace spx::kern
