#include "kernels.cuh"

#include <climits>
#include <cmath>

#include "check.cuh"
#include "numeric.cuh"

namespace spx::kern {

namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 1 ? 1 : (b > 65535 * 8 ? 65535 * 8 : b));
}

#define GRID_LOOP(i, n) \
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < (n); i += static_cast<int64_t>(gridDim.x) * blockDim.x)

// block_sum reduces v over the block in a fixed tree order (deterministic); every thread gets
// the result. buf holds blockDim.x values.
template <typename A>
__device__ A block_sum(A v, A* buf) {
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] += buf[threadIdx.x + s];
    __syncthreads();
  }
  A r = buf[0];
  __syncthreads();
  return r;
}

template <typename A>
__device__ A block_max(A v, A* buf) {
  buf[threadIdx.x] = v;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) buf[threadIdx.x] = buf[threadIdx.x] > buf[threadIdx.x + s] ? buf[threadIdx.x] : buf[threadIdx.x + s];
    __syncthreads();
  }
  A r = buf[0];
  __syncthreads();
  return r;
}

__device__ __forceinline__ float ex(float x) { return expf(x); }
__device__ __forceinline__ double ex(double x) { return exp(x); }
__device__ __forceinline__ float lg(float x) { return logf(x); }
__device__ __forceinline__ double lg(double x) { return log(x); }
__device__ __forceinline__ float rsq(float x) { return 1.0f / sqrtf(x); }
__device__ __forceinline__ double rsq(double x) { return 1.0 / sqrt(x); }

#define DISPATCH_FLOAT(dt, T, ...)                                                                 \
  switch (dt) {                                                                                    \
    case DType::F32: {                                                                             \
      using T = float;                                                                             \
      __VA_ARGS__;                                                                                 \
      break;                                                                                       \
    }                                                                                              \
    case DType::BF16: {                                                                            \
      using T = bf16;                                                                              \
      __VA_ARGS__;                                                                                 \
      break;                                                                                       \
    }                                                                                              \
    case DType::F64: {                                                                             \
      using T = double;                                                                            \
      __VA_ARGS__;                                                                                 \
      break;                                                                                       \
    }                                                                                              \
    default: fail(thread_context(), ": kernel needs an F32, BF16 or F64 tensor, got ", dtype_name(dt)); \
  }

// DISPATCH_STAT: statistics and accumulations (F32 or F64).
#define DISPATCH_STAT(dt, A, ...)                                                     \
  if ((dt) == DType::F64) {                                                           \
    using A = double;                                                                 \
    __VA_ARGS__;                                                                      \
  } else {                                                                            \
    using A = float;                                                                  \
    __VA_ARGS__;                                                                      \
  }

bool is_kernel_float(DType d) { return d == DType::F32 || d == DType::BF16 || d == DType::F64; }

void want_float(const char* op, const DTensor& t) {
  if (!is_kernel_float(t.dtype)) fail(thread_context(), ": ", op, ": needs an F32, BF16 or F64 tensor, got ", t.str());
}

void want_same(const char* op, const DTensor& a, const DTensor& b) {
  if (a.dtype != b.dtype) fail(thread_context(), ": ", op, ": dtypes differ: ", a.str(), " and ", b.str());
}

void want_shape(const char* op, bool ok, const std::string& msg) {
  if (!ok) fail(thread_context(), ": ", op, ": ", msg);
}

int64_t last(const DTensor& t) { return t.shape.empty() ? 1 : t.shape.back(); }

cudaDataType_t cuda_type(DType d) {
  switch (d) {
    case DType::F32: return CUDA_R_32F;
    case DType::BF16: return CUDA_R_16BF;
    case DType::F64: return CUDA_R_64F;
    default: fail(thread_context(), ": gemm on ", dtype_name(d));
  }
}

// gemm_ex: row-major C = alpha·op(A)·op(B) + beta·C for `batch` matrices at strides sa, sb, sc
// (elements); A and B of dtype ab, C of dtype c (bf16 operands may write an fp32 C). fp64 C
// computes in fp64 (DGEMM), anything else in fp32.
void gemm_ex(const Gpu& g, DType ab, DType c, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void* a,
             int64_t lda, int64_t sa, const void* b, int64_t ldb, int64_t sb, double beta, void* cp, int64_t ldc, int64_t sc,
             int64_t batch) {
  if (m == 0 || n == 0 || batch == 0) return;
  for (int64_t x : {m, n, k, lda, ldb, ldc})
    if (x > INT_MAX) fail(thread_context(), ": gemm dimension ", x, " exceeds cuBLAS's int range");
  cudaDataType_t at = cuda_type(ab), ct = cuda_type(c);
  bool f64 = c == DType::F64;
  float af = static_cast<float>(alpha), bf = static_cast<float>(beta);
  const void* al = f64 ? static_cast<const void*>(&alpha) : static_cast<const void*>(&af);
  const void* be = f64 ? static_cast<const void*>(&beta) : static_cast<const void*>(&bf);
  cublasComputeType_t comp = f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F;
  // Row-major C = op(A)·op(B) is column-major Cᵀ = op(B)ᵀ·op(A)ᵀ: swap the operands.
  cublasOperation_t opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N, opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (batch == 1) {
    CUBLAS_OK(cublasGemmEx(g.blas, opb, opa, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), al, b, at,
                           static_cast<int>(ldb), a, at, static_cast<int>(lda), be, cp, ct, static_cast<int>(ldc), comp,
                           CUBLAS_GEMM_DEFAULT));
  } else {
    CUBLAS_OK(cublasGemmStridedBatchedEx(g.blas, opb, opa, static_cast<int>(n), static_cast<int>(m), static_cast<int>(k), al, b, at,
                                         static_cast<int>(ldb), sb, a, at, static_cast<int>(lda), sa, be, cp, ct,
                                         static_cast<int>(ldc), sc, static_cast<int>(batch), comp, CUBLAS_GEMM_DEFAULT));
  }
}

}  // namespace

DType stat_dtype(DType d) { return d == DType::F64 ? DType::F64 : DType::F32; }

void outer_inner(const std::vector<int64_t>& shape, int dim, int64_t* outer, int64_t* inner) {
  *outer = 1;
  *inner = 1;
  for (int i = 0; i < dim; i++) *outer *= shape[i];
  for (size_t i = dim + 1; i < shape.size(); i++) *inner *= shape[i];
}

// ---- GEMM ----------------------------------------------------------------------------------

void gemm(const Gpu& g, DType d, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, const void* a, int64_t lda,
          const void* b, int64_t ldb, double beta, void* c, int64_t ldc) {
  gemm_ex(g, d, d, ta, tb, m, n, k, alpha, a, lda, 0, b, ldb, 0, beta, c, ldc, 0, 1);
}

DTensor linear(const Gpu& g, const DTensor& x, const DTensor& w) {
  want_float("linear", x);
  want_same("linear", x, w);
  int64_t in = last(x);
  want_shape("linear", w.shape.size() == 2 && w.shape[1] == in && !x.shape.empty(),
             "weight " + w.str() + " is not [out, " + std::to_string(in) + "] for x " + x.str());
  int64_t out = w.shape[0], n = numel_of(std::vector<int64_t>(x.shape.begin(), x.shape.end() - 1));
  std::vector<int64_t> ys(x.shape.begin(), x.shape.end() - 1);
  ys.push_back(out);
  DTensor y = dalloc(g, x.dtype, ys, "linear output");
  if (in == 0) {
    dzero(g, y);
    return y;
  }
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
  if (out == 0) {
    dzero(g, dx);
    return dx;
  }
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
  if (n == 0) {
    dzero(g, dw);
    return dw;
  }
  gemm(g, x.dtype, true, false, out, in, n, 1, dy.data(), out, x.data(), in, 0, dw.data(), in);
  return dw;
}

// ---- RMSNorm -------------------------------------------------------------------------------

namespace {

template <typename T>
__global__ void rmsnorm_fwd_k(const T* x, const T* w, T* y, acc_t<T>* rstd, int64_t h, acc_t<T> eps) {
  using A = acc_t<T>;
  __shared__ A buf[kThreads];
  int64_t r = blockIdx.x;
  const T* xr = x + r * h;
  A ss = 0;
  for (int64_t j = threadIdx.x; j < h; j += blockDim.x) {
    A v = ld(xr, j);
    ss += v * v;
  }
  ss = block_sum(ss, buf);
  A rs = rsq(ss / static_cast<A>(h) + eps);
  if (threadIdx.x == 0) rstd[r] = rs;
  for (int64_t j = threadIdx.x; j < h; j += blockDim.x) st(y, r * h + j, ld(xr, j) * rs * ld(w, j));
}

template <typename T>
__global__ void rmsnorm_bwd_dx_k(const T* x, const T* w, const acc_t<T>* rstd, const T* dy, T* dx, int64_t h) {
  using A = acc_t<T>;
  __shared__ A buf[kThreads];
  int64_t r = blockIdx.x;
  A rs = rstd[r];
  A dot = 0;
  for (int64_t j = threadIdx.x; j < h; j += blockDim.x) dot += ld(dy, r * h + j) * ld(w, j) * ld(x, r * h + j);
  dot = block_sum(dot, buf);
  A c = rs * rs * rs * dot / static_cast<A>(h);
  for (int64_t j = threadIdx.x; j < h; j += blockDim.x) st(dx, r * h + j, rs * ld(dy, r * h + j) * ld(w, j) - ld(x, r * h + j) * c);
}

// kDWRows rows per partial sum of the weight grad: column j of chunk c sums its rows in order,
// then the chunks are summed in order (deterministic, and h·rows/kDWRows threads of work).
constexpr int64_t kDWRows = 64;

template <typename T>
__global__ void rmsnorm_bwd_dw_part_k(const T* x, const acc_t<T>* rstd, const T* dy, acc_t<T>* part, int64_t rows, int64_t h) {
  int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x, c = blockIdx.y;
  if (j >= h) return;
  acc_t<T> acc = 0;
  int64_t end = min(rows, (c + 1) * kDWRows);
  for (int64_t r = c * kDWRows; r < end; r++) acc += ld(dy, r * h + j) * ld(x, r * h + j) * rstd[r];
  part[c * h + j] = acc;
}

template <typename T>
__global__ void sum_parts_k(const acc_t<T>* part, T* out, int64_t chunks, int64_t h) {
  GRID_LOOP(j, h) {
    acc_t<T> acc = 0;
    for (int64_t c = 0; c < chunks; c++) acc += part[c * h + j];
    st(out, j, acc);
  }
}

}  // namespace

void rmsnorm(const Gpu& g, const DTensor& x, const DTensor& w, double eps, DTensor* y, DTensor* rstd) {
  want_float("rmsnorm", x);
  want_same("rmsnorm", x, w);
  int64_t h = last(x), rows = h ? x.numel() / h : 0;
  want_shape("rmsnorm", w.shape.size() == 1 && w.shape[0] == h, "weight " + w.str() + " is not [" + std::to_string(h) + "]");
  *y = dalloc(g, x.dtype, x.shape, "rmsnorm output");
  *rstd = dalloc(g, stat_dtype(x.dtype), {rows}, "rmsnorm rstd");
  if (rows == 0) return;
  DISPATCH_FLOAT(x.dtype, T,
                 rmsnorm_fwd_k<T><<<rows, kThreads, 0, g.stream>>>(x.as<T>(), w.as<T>(), y->as<T>(), rstd->as<acc_t<T>>(), h,
                                                                   static_cast<acc_t<T>>(eps)));
  KERNEL_OK("rmsnorm");
}

void rmsnorm_backward(const Gpu& g, const DTensor& x, const DTensor& w, const DTensor& rstd, const DTensor& dy, DTensor* dx,
                      DTensor* dw) {
  want_float("rmsnorm_backward", x);
  want_same("rmsnorm_backward", x, w);
  want_same("rmsnorm_backward", x, dy);
  int64_t h = last(x), rows = h ? x.numel() / h : 0;
  want_shape("rmsnorm_backward", dy.shape == x.shape && w.shape.size() == 1 && w.shape[0] == h && rstd.numel() == rows &&
                                     rstd.dtype == stat_dtype(x.dtype),
             "x " + x.str() + ", w " + w.str() + ", rstd " + rstd.str() + ", dy " + dy.str() + " do not fit");
  *dx = dalloc(g, x.dtype, x.shape, "rmsnorm input grad");
  *dw = dalloc(g, x.dtype, {h}, "rmsnorm weight grad");
  if (rows == 0) {
    dzero(g, *dw);
    return;
  }
  int64_t chunks = (rows + kDWRows - 1) / kDWRows;
  DTensor part = dalloc(g, stat_dtype(x.dtype), {chunks, h}, "rmsnorm weight-grad partial sums");
  dim3 grid(static_cast<unsigned>((h + kThreads - 1) / kThreads), static_cast<unsigned>(chunks));
  DISPATCH_FLOAT(x.dtype, T, {
    using A = acc_t<T>;
    rmsnorm_bwd_dx_k<T><<<rows, kThreads, 0, g.stream>>>(x.as<T>(), w.as<T>(), rstd.as<A>(), dy.as<T>(), dx->as<T>(), h);
    rmsnorm_bwd_dw_part_k<T><<<grid, kThreads, 0, g.stream>>>(x.as<T>(), rstd.as<A>(), dy.as<T>(), part.as<A>(), rows, h);
    sum_parts_k<T><<<blocks_for(h), kThreads, 0, g.stream>>>(part.as<A>(), dw->as<T>(), chunks, h);
  });
  KERNEL_OK("rmsnorm_backward");
}

// ---- RoPE ----------------------------------------------------------------------------------

namespace {
template <typename T>
__global__ void rope_k(const T* x, const int* pos, T* y, int64_t tokens, int64_t heads, int64_t hd, double base, double sign) {
  using A = acc_t<T>;
  int64_t half = hd / 2, n = tokens * heads * half;
  GRID_LOOP(i, n) {
    int64_t j = i % half, th = i / half, t = th / heads;
    double inv = 1.0 / pow(base, static_cast<double>(2 * j) / static_cast<double>(hd));
    double a = static_cast<double>(pos[t]) * inv;
    A c = static_cast<A>(cos(a)), s = static_cast<A>(sign * sin(a));
    int64_t off = th * hd;
    A x1 = ld(x, off + j), x2 = ld(x, off + j + half);
    st(y, off + j, x1 * c - x2 * s);
    st(y, off + j + half, x2 * c + x1 * s);
  }
}
}  // namespace

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
                 rope_k<T><<<blocks_for(x.numel() / 2), kThreads, 0, g.stream>>>(x.as<T>(), pos.as<int>(), y.as<T>(), tokens, heads,
                                                                                 hd, kRoPEBase, sign));
  KERNEL_OK("rope");
  return y;
}

// ---- Attention -----------------------------------------------------------------------------
//
// Per batch row b and head h (one strided-batched GEMM over the heads of a row):
//   scores = scale·Q·Kᵀ (GEMM into probs), probs = softmax over the allowed keys (masked rows),
//   out = P·V; backward dP = dO·Vᵀ, dS = P∘(dP − rowsum(P∘dP)), dQ = scale·dS·K,
//   dK = scale·dSᵀ·Q, dV = Pᵀ·dO.
// Products involving probabilities are taken in the accumulation type (bf16 operands are
// widened to fp32 copies first), so a bf16 run rounds only the op outputs, as the per-element
// kernels it replaces did.

namespace {

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

// softmax_rows_k: one block per (query row i, head h, batch row b) of the scores in p: the
// softmax over keys [lo, i], zero elsewhere.
template <typename A>
__global__ void softmax_rows_k(A* probs, const int* cu, int ncu, int64_t S, int64_t H) {
  __shared__ A buf[kThreads];
  int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  int64_t lo, hi;
  segment(cu, ncu, i, &lo, &hi);
  A* p = probs + ((b * H + h) * S + i) * S;
  A m = -INFINITY;
  for (int64_t j = lo + threadIdx.x; j <= i; j += blockDim.x) m = p[j] > m ? p[j] : m;
  m = block_max(m, buf);
  A sum = 0;
  for (int64_t j = lo + threadIdx.x; j <= i; j += blockDim.x) sum += ex(p[j] - m);
  sum = block_sum(sum, buf);
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x) p[j] = (j >= lo && j <= i) ? ex(p[j] - m) / sum : A(0);
}

// softmax_grad_rows_k: ds holds dP on entry, dS = P∘(dP − Σ_j P∘dP) on exit (zero outside the
// allowed keys), one block per row.
template <typename A>
__global__ void softmax_grad_rows_k(const A* probs, A* ds, const int* cu, int ncu, int64_t S, int64_t H) {
  __shared__ A buf[kThreads];
  int64_t i = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
  int64_t lo, hi;
  segment(cu, ncu, i, &lo, &hi);
  const A* p = probs + ((b * H + h) * S + i) * S;
  A* d = ds + ((b * H + h) * S + i) * S;
  A dot = 0;
  for (int64_t j = lo + threadIdx.x; j <= i; j += blockDim.x) dot += p[j] * d[j];
  dot = block_sum(dot, buf);
  for (int64_t j = threadIdx.x; j < S; j += blockDim.x) d[j] = (j >= lo && j <= i) ? p[j] * (d[j] - dot) : A(0);
}

void attn_check(const char* op, const DTensor& q, const DTensor& k, const DTensor& v, const DTensor& cu) {
  want_float(op, q);
  want_same(op, q, k);
  want_same(op, q, v);
  want_shape(op, q.shape.size() == 4 && k.shape == q.shape && v.shape == q.shape,
             "want q, k, v [B,S,heads,hd] of one shape, got " + q.str() + ", " + k.str() + ", " + v.str());
  want_shape(op, cu.dtype == DType::I32 && cu.shape.size() == 1 && cu.numel() >= 2, "cu_seqlens " + cu.str() + " is not an I32 list");
}

// widened is t in the accumulation dtype (t itself unless it is bf16).
DTensor widened(const Gpu& g, const DTensor& t) { return t.dtype == stat_dtype(t.dtype) ? t : convert(g, t, stat_dtype(t.dtype)); }

// head_gemms runs C_bh = alpha·op(A_bh)·op(B_bh) for every batch row b and head h. Operands are
// either [B,S,H,hd] tensors (seq = true: head h of row b at offset (b·S·H + h)·hd, row stride
// H·hd) or [B,H,S,S] score matrices (offset (b·H + h)·S·S, row stride S).
struct HeadMat {
  const DTensor* t;
  bool seq;
};

void head_gemms(const Gpu& g, DType ab, DType ct, bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha, HeadMat a, HeadMat b,
                HeadMat c, int64_t B, int64_t S, int64_t H, int64_t hd) {
  auto ldo = [&](const HeadMat& x) { return x.seq ? H * hd : S; };
  auto stride = [&](const HeadMat& x) { return x.seq ? hd : S * S; };
  auto base = [&](const HeadMat& x, int64_t bb) {
    int64_t off = x.seq ? bb * S * H * hd : bb * H * S * S;
    return static_cast<uint8_t*>(x.t->data()) + off * static_cast<int64_t>(dtype_size(x.t->dtype));
  };
  for (int64_t bb = 0; bb < B; bb++)
    gemm_ex(g, ab, ct, ta, tb, m, n, k, alpha, base(a, bb), ldo(a), stride(a), base(b, bb), ldo(b), stride(b), 0, base(c, bb), ldo(c),
            stride(c), H);
}

}  // namespace

void attention(const Gpu& g, const DTensor& q, const DTensor& k, const DTensor& v, const DTensor& cu, DTensor* out,
               DTensor* probs) {
  attn_check("attention", q, k, v, cu);
  int64_t B = q.shape[0], S = q.shape[1], H = q.shape[2], hd = q.shape[3];
  DType at = stat_dtype(q.dtype);
  *out = dalloc(g, q.dtype, q.shape, "attention output");
  *probs = dalloc(g, at, {B, H, S, S}, "attention probs");
  if (q.numel() == 0) return;
  double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  head_gemms(g, q.dtype, at, false, true, S, S, hd, scale, {&q, true}, {&k, true}, {probs, false}, B, S, H, hd);
  dim3 grid(static_cast<unsigned>(S), static_cast<unsigned>(H), static_cast<unsigned>(B));
  DISPATCH_STAT(at, A, softmax_rows_k<A><<<grid, kThreads, 0, g.stream>>>(probs->as<A>(), cu.as<int>(), cu.numel(), S, H));
  KERNEL_OK("attention softmax");
  DTensor vw = widened(g, v);
  DTensor ow = at == q.dtype ? *out : dalloc(g, at, q.shape, "attention output (accumulated)");
  head_gemms(g, at, at, false, false, S, hd, S, 1, {probs, false}, {&vw, true}, {&ow, true}, B, S, H, hd);
  if (at != q.dtype) *out = convert(g, ow, q.dtype);
}

void attention_backward(const Gpu& g, const DTensor& q, const DTensor& k, const DTensor& v, const DTensor& probs,
                        const DTensor& dout, const DTensor& cu, DTensor* dq, DTensor* dk, DTensor* dv) {
  attn_check("attention_backward", q, k, v, cu);
  want_same("attention_backward", q, dout);
  int64_t B = q.shape[0], S = q.shape[1], H = q.shape[2], hd = q.shape[3];
  DType at = stat_dtype(q.dtype);
  want_shape("attention_backward", dout.shape == q.shape && probs.dtype == at && probs.shape == std::vector<int64_t>{B, H, S, S},
             "dout " + dout.str() + " / probs " + probs.str() + " do not fit q " + q.str());
  if (q.numel() == 0) {
    for (DTensor* t : {dq, dk, dv}) *t = dalloc(g, q.dtype, q.shape, "attention grad");
    return;
  }
  double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  DTensor ds = dalloc(g, at, {B, H, S, S}, "attention dS");
  head_gemms(g, q.dtype, at, false, true, S, S, hd, 1, {&dout, true}, {&v, true}, {&ds, false}, B, S, H, hd);
  dim3 grid(static_cast<unsigned>(S), static_cast<unsigned>(H), static_cast<unsigned>(B));
  DISPATCH_STAT(at, A,
                 softmax_grad_rows_k<A><<<grid, kThreads, 0, g.stream>>>(probs.as<A>(), ds.as<A>(), cu.as<int>(), cu.numel(), S, H));
  KERNEL_OK("attention softmax backward");
  DTensor qw = widened(g, q), kw = widened(g, k), dow = widened(g, dout);
  DTensor dqw = dalloc(g, at, q.shape, "attention dq"), dkw = dalloc(g, at, q.shape, "attention dk"),
          dvw = dalloc(g, at, q.shape, "attention dv");
  head_gemms(g, at, at, false, false, S, hd, S, scale, {&ds, false}, {&kw, true}, {&dqw, true}, B, S, H, hd);
  head_gemms(g, at, at, true, false, S, hd, S, scale, {&ds, false}, {&qw, true}, {&dkw, true}, B, S, H, hd);
  head_gemms(g, at, at, true, false, S, hd, S, 1, {&probs, false}, {&dow, true}, {&dvw, true}, B, S, H, hd);
  *dq = at == q.dtype ? dqw : convert(g, dqw, q.dtype);
  *dk = at == q.dtype ? dkw : convert(g, dkw, q.dtype);
  *dv = at == q.dtype ? dvw : convert(g, dvw, q.dtype);
}

// ---- SwiGLU --------------------------------------------------------------------------------

namespace {
template <typename A>
__device__ __forceinline__ A sigm(A x) {
  if (x >= 0) return A(1) / (A(1) + ex(-x));
  A e = ex(x);
  return e / (A(1) + e);
}

template <typename T>
__global__ void swiglu_k(const T* gate, const T* up, T* y, int64_t n) {
  GRID_LOOP(i, n) {
    acc_t<T> gv = ld(gate, i);
    st(y, i, gv * sigm(gv) * ld(up, i));
  }
}

template <typename T>
__global__ void swiglu_bwd_k(const T* gate, const T* up, const T* dy, T* dgate, T* dup, int64_t n) {
  using A = acc_t<T>;
  GRID_LOOP(i, n) {
    A gv = ld(gate, i), sg = sigm(gv), d = ld(dy, i);
    st(dup, i, d * gv * sg);
    st(dgate, i, d * ld(up, i) * sg * (A(1) + gv * (A(1) - sg)));
  }
}
}  // namespace

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

namespace {
template <typename T>
__global__ void embed_k(const int* ids, const T* table, T* out, int64_t tokens, int64_t rows, int64_t h, int64_t lo) {
  int64_t n = tokens * h;
  GRID_LOOP(i, n) {
    int64_t t = i / h, c = i % h, r = static_cast<int64_t>(ids[t]) - lo;
    st(out, i, (r >= 0 && r < rows) ? ld(table, r * h + c) : acc_t<T>(0));
  }
}

// embed_bwd_k: one thread per column c adds the tokens' gradient rows into their table rows in
// token order (so every element's sum has a fixed order), in the accumulation type.
template <typename T>
__global__ void embed_bwd_k(const int* ids, const T* dy, acc_t<T>* acc, int64_t tokens, int64_t rows, int64_t h, int64_t lo) {
  GRID_LOOP(c, h) {
    for (int64_t t = 0; t < tokens; t++) {
      int64_t r = static_cast<int64_t>(ids[t]) - lo;
      if (r >= 0 && r < rows) acc[r * h + c] += ld(dy, t * h + c);
    }
  }
}
}  // namespace

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
  DType at = stat_dtype(dy.dtype);
  DTensor acc = dalloc(g, at, {vocab_rows, h}, "embedding grad");
  dzero(g, acc);
  if (!acc.numel()) return at == dy.dtype ? acc : convert(g, acc, dy.dtype);
  DISPATCH_FLOAT(dy.dtype, T,
                 embed_bwd_k<T><<<blocks_for(h), kThreads, 0, g.stream>>>(ids.as<int>(), dy.as<T>(), acc.as<acc_t<T>>(), ids.numel(),
                                                                          vocab_rows, h, lo));
  KERNEL_OK("embedding_backward");
  return at == dy.dtype ? acc : convert(g, acc, dy.dtype);
}

// ---- Element-wise and data movement --------------------------------------------------------

namespace {
template <typename T>
__global__ void add_k(const T* a, const T* b, T* y, int64_t n) {
  GRID_LOOP(i, n) st(y, i, ld(a, i) + ld(b, i));
}

template <typename T>
__global__ void scale_k(const T* a, T* y, acc_t<T> s, int64_t n) {
  GRID_LOOP(i, n) st(y, i, ld(a, i) * s);
}
}  // namespace

DTensor add(const Gpu& g, const DTensor& a, const DTensor& b) {
  want_float("add", a);
  want_same("add", a, b);
  want_shape("add", a.numel() == b.numel(), a.str() + " + " + b.str());
  DTensor y = dalloc(g, a.dtype, a.shape, "add output");
  if (!a.numel()) return y;
  DISPATCH_FLOAT(a.dtype, T, add_k<T><<<blocks_for(a.numel()), kThreads, 0, g.stream>>>(a.as<T>(), b.as<T>(), y.as<T>(), a.numel()));
  KERNEL_OK("add");
  return y;
}

void add_into(const Gpu& g, DTensor& acc, const DTensor& b) {
  want_float("add_into", acc);
  want_same("add_into", acc, b);
  want_shape("add_into", acc.numel() == b.numel(), acc.str() + " += " + b.str());
  if (!acc.numel()) return;
  DISPATCH_FLOAT(acc.dtype, T,
                 add_k<T><<<blocks_for(acc.numel()), kThreads, 0, g.stream>>>(acc.as<T>(), b.as<T>(), acc.as<T>(), acc.numel()));
  KERNEL_OK("add_into");
}

DTensor scale(const Gpu& g, const DTensor& a, double s) {
  want_float("scale", a);
  DTensor y = dalloc(g, a.dtype, a.shape, "scale output");
  if (!a.numel()) return y;
  DISPATCH_FLOAT(a.dtype, T,
                 scale_k<T><<<blocks_for(a.numel()), kThreads, 0, g.stream>>>(a.as<T>(), y.as<T>(), static_cast<acc_t<T>>(s), a.numel()));
  KERNEL_OK("scale");
  return y;
}

namespace {
template <typename T>
__device__ __forceinline__ double ldd(const T* p, int64_t i) { return static_cast<double>(p[i]); }
template <>
__device__ __forceinline__ double ldd<bf16>(const bf16* p, int64_t i) { return __bfloat162float(p[i]); }
template <typename T>
__device__ __forceinline__ void std_(T* p, int64_t i, double v) { st_d(p, i, v); }
template <>
__device__ __forceinline__ void std_<int>(int* p, int64_t i, double v) { p[i] = static_cast<int>(rint(v)); }
template <>
__device__ __forceinline__ void std_<long long>(long long* p, int64_t i, double v) { p[i] = static_cast<long long>(rint(v)); }

template <typename S, typename D>
__global__ void convert_k(const S* a, D* y, int64_t n) {
  GRID_LOOP(i, n) std_(y, i, ldd(a, i));
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

namespace {
__global__ void copy_block_k(const uint8_t* src, int64_t src_dim, int64_t src_off, uint8_t* dst, int64_t dst_dim, int64_t dst_off,
                             int64_t outer, int64_t n, int64_t inner_bytes) {
  int64_t total = outer * n * inner_bytes;
  GRID_LOOP(i, total) {
    int64_t byte = i % inner_bytes, r = i / inner_bytes, row = r % n, o = r / n;
    dst[(o * dst_dim + dst_off + row) * inner_bytes + byte] = src[(o * src_dim + src_off + row) * inner_bytes + byte];
  }
}
}  // namespace

void copy_block(const Gpu& g, const DTensor& src, int64_t src_dim, int64_t src_off, DTensor& dst, int64_t dst_dim, int64_t dst_off,
                int64_t outer, int64_t n, int64_t inner) {
  want_same("copy_block", src, dst);
  want_shape("copy_block",
             src_off >= 0 && dst_off >= 0 && src_off + n <= src_dim && dst_off + n <= dst_dim && outer * src_dim * inner == src.numel() &&
                 outer * dst_dim * inner == dst.numel(),
             "block [" + std::to_string(src_off) + "+" + std::to_string(n) + "] of " + src.str() + " into [" + std::to_string(dst_off) +
                 "] of " + dst.str());
  int64_t es = static_cast<int64_t>(dtype_size(src.dtype)), row = n * inner * es;
  if (!outer || !row) return;
  const uint8_t* s = src.as<uint8_t>() + src_off * inner * es;
  uint8_t* d = dst.as<uint8_t>() + dst_off * inner * es;
  if (outer == 1) {
    CUDA_OK(cudaMemcpyAsync(d, s, row, cudaMemcpyDeviceToDevice, g.stream));
  } else if (src_dim * inner * es < INT_MAX && dst_dim * inner * es < INT_MAX) {
    // A strided 2-D copy: `outer` rows of `row` bytes, at the two tensors' pitches.
    CUDA_OK(cudaMemcpy2DAsync(d, dst_dim * inner * es, s, src_dim * inner * es, row, outer, cudaMemcpyDeviceToDevice, g.stream));
  } else {
    copy_block_k<<<blocks_for(outer * row), kThreads, 0, g.stream>>>(src.as<uint8_t>(), src_dim, src_off, dst.as<uint8_t>(), dst_dim,
                                                                     dst_off, outer, n, inner * es);
    KERNEL_OK("copy_block");
  }
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

// ---- Vocab-parallel cross-entropy ----------------------------------------------------------

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

// vocab_max_k, vocab_sumexp_k: one block per row, a fixed-tree block reduction over the columns.
template <typename T>
__global__ void vocab_max_k(const T* z, acc_t<T>* m, int64_t v, int64_t valid) {
  using A = acc_t<T>;
  __shared__ A buf[kThreads];
  int64_t r = blockIdx.x;
  A best = -INFINITY;
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) {
    A x = ld(z, r * v + j);
    best = x > best ? x : best;
  }
  best = block_max(best, buf);
  if (threadIdx.x == 0) m[r] = best;
}

template <typename T>
__global__ void vocab_sumexp_k(const T* z, const acc_t<T>* m, acc_t<T>* s, int64_t v, int64_t valid) {
  using A = acc_t<T>;
  __shared__ A buf[kThreads];
  int64_t r = blockIdx.x;
  A sum = 0, mr = m[r];
  for (int64_t j = threadIdx.x; j < valid; j += blockDim.x) sum += ex(ld(z, r * v + j) - mr);
  sum = block_sum(sum, buf);
  if (threadIdx.x == 0) s[r] = sum;
}

template <typename T>
__global__ void vocab_target_k(const T* z, const int* labels, acc_t<T>* t, int64_t rows, int64_t v, int64_t offset, int64_t valid) {
  GRID_LOOP(r, rows) {
    int64_t c = static_cast<int64_t>(labels[r]) - offset;
    t[r] = (c >= 0 && c < valid) ? ld(z, r * v + c) : acc_t<T>(0);
  }
}

// ce_loss_k sums in token order on one thread: deterministic, and token counts are small.
template <typename A>
__global__ void ce_loss_k(const A* m, const A* s, const A* t, const A* w, A* loss, int64_t n) {
  if (blockIdx.x != 0 || threadIdx.x != 0) return;
  A acc = 0;
  for (int64_t i = 0; i < n; i++)
    if (w[i] != 0) acc += w[i] * (m[i] + lg(s[i]) - t[i]);
  *loss = acc;
}

template <typename T>
__global__ void ce_grad_k(const T* z, const acc_t<T>* m, const acc_t<T>* s, const int* labels, const acc_t<T>* w, T* dz, int64_t rows,
                          int64_t v, int64_t offset, int64_t valid, acc_t<T> scale) {
  using A = acc_t<T>;
  int64_t n = rows * v;
  GRID_LOOP(i, n) {
    int64_t r = i / v, j = i % v;
    A c = scale * w[r], out = 0;
    if (c != 0 && j < valid) {
      out = c * ex(ld(z, i) - m[r]) / s[r];
      if (j == static_cast<int64_t>(labels[r]) - offset) out -= c;
    }
    st(dz, i, out);
  }
}
}  // namespace

DTensor vocab_max(const Gpu& g, const DTensor& z, int64_t valid) {
  int64_t rows, v;
  ce_rows("vocab_max", z, valid, &rows, &v);
  DTensor m = dalloc(g, stat_dtype(z.dtype), row_shape(z), "vocab_max output");
  if (!rows) return m;
  DISPATCH_FLOAT(z.dtype, T, vocab_max_k<T><<<rows, kThreads, 0, g.stream>>>(z.as<T>(), m.as<acc_t<T>>(), v, valid));
  KERNEL_OK("vocab_max");
  return m;
}

DTensor vocab_sumexp(const Gpu& g, const DTensor& z, const DTensor& m, int64_t valid) {
  int64_t rows, v;
  ce_rows("vocab_sumexp", z, valid, &rows, &v);
  want_rows("vocab_sumexp", m, rows, stat_dtype(z.dtype));
  DTensor s = dalloc(g, stat_dtype(z.dtype), row_shape(z), "vocab_sumexp output");
  if (!rows) return s;
  DISPATCH_FLOAT(z.dtype, T,
                 vocab_sumexp_k<T><<<rows, kThreads, 0, g.stream>>>(z.as<T>(), m.as<acc_t<T>>(), s.as<acc_t<T>>(), v, valid));
  KERNEL_OK("vocab_sumexp");
  return s;
}

DTensor vocab_target(const Gpu& g, const DTensor& z, const DTensor& labels, int64_t offset, int64_t valid) {
  int64_t rows, v;
  ce_rows("vocab_target", z, valid, &rows, &v);
  want_rows("vocab_target", labels, rows, DType::I32);
  DTensor t = dalloc(g, stat_dtype(z.dtype), row_shape(z), "vocab_target output");
  if (!rows) return t;
  DISPATCH_FLOAT(z.dtype, T,
                 vocab_target_k<T><<<blocks_for(rows), kThreads, 0, g.stream>>>(z.as<T>(), labels.as<int>(), t.as<acc_t<T>>(), rows, v,
                                                                                 offset, valid));
  KERNEL_OK("vocab_target");
  return t;
}

DTensor ce_loss(const Gpu& g, const DTensor& m, const DTensor& s, const DTensor& t, const DTensor& w) {
  int64_t n = m.numel();
  DType d = m.dtype;
  want_shape("ce_loss", d == DType::F32 || d == DType::F64, "statistics " + m.str() + " are not F32 or F64");
  for (const DTensor* x : {&m, &s, &t, &w}) want_rows("ce_loss", *x, n, d);
  DTensor loss = dalloc(g, d, {}, "ce_loss output");
  if (d == DType::F64) {
    ce_loss_k<double><<<1, 1, 0, g.stream>>>(m.as<double>(), s.as<double>(), t.as<double>(), w.as<double>(), loss.as<double>(), n);
  } else {
    ce_loss_k<float><<<1, 1, 0, g.stream>>>(m.as<float>(), s.as<float>(), t.as<float>(), w.as<float>(), loss.as<float>(), n);
  }
  KERNEL_OK("ce_loss");
  return loss;
}

DTensor ce_grad(const Gpu& g, const DTensor& z, const DTensor& m, const DTensor& s, const DTensor& labels, const DTensor& w,
                int64_t offset, int64_t valid, double scale) {
  int64_t rows, v;
  ce_rows("ce_grad", z, valid, &rows, &v);
  DType sd = stat_dtype(z.dtype);
  want_rows("ce_grad", m, rows, sd);
  want_rows("ce_grad", s, rows, sd);
  want_rows("ce_grad", w, rows, sd);
  want_rows("ce_grad", labels, rows, DType::I32);
  DTensor dz = dalloc(g, z.dtype, z.shape, "ce_grad output");
  if (!z.numel()) return dz;
  DISPATCH_FLOAT(z.dtype, T,
                 ce_grad_k<T><<<blocks_for(z.numel()), kThreads, 0, g.stream>>>(z.as<T>(), m.as<acc_t<T>>(), s.as<acc_t<T>>(),
                                                                                labels.as<int>(), w.as<acc_t<T>>(), dz.as<T>(), rows, v,
                                                                                offset, valid, static_cast<acc_t<T>>(scale)));
  KERNEL_OK("ce_grad");
  return dz;
}

}  // namespace spx::kern
