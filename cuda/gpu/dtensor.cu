#include "dtensor.cuh"

#include <algorithm>
#include <cstring>

#include "check.cuh"

namespace spx {

void Gpu::init(int r, int dev) {
  rank = r;
  device = dev;
  CUDA_OK(cudaSetDevice(device));
  CUDA_OK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  CUBLAS_OK(cublasCreate(&blas));
  CUBLAS_OK(cublasSetStream(blas, stream));
  // Plain fp32 arithmetic: no TF32 for fp32 GEMMs (the oracle comparison assumes fp32 rounding).
  CUBLAS_OK(cublasSetMathMode(blas, CUBLAS_PEDANTIC_MATH));
  // Keep freed memory in the stream-ordered pool instead of returning it at every sync, so a
  // program's allocations stop costing anything after the first use of each size.
  cudaMemPool_t pool;
  CUDA_OK(cudaDeviceGetDefaultMemPool(&pool, device));
  uint64_t keep = UINT64_MAX;
  CUDA_OK(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep));
}

// kStagingBytes is the size of each of the two pinned download buffers.
constexpr size_t kStagingBytes = size_t(32) << 20;

void Gpu::destroy() {
  for (int i = 0; i < 2; i++) {
    if (staging[i]) cudaFreeHost(staging[i]);
    if (staged[i]) cudaEventDestroy(staged[i]);
    staging[i] = nullptr;
    staged[i] = nullptr;
  }
  if (blas) cublasDestroy(blas);
  if (stream) cudaStreamDestroy(stream);
  blas = nullptr;
  stream = nullptr;
}

void Gpu::sync() const { CUDA_OK(cudaStreamSynchronize(stream)); }

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); i++) s += (i ? "," : "") + std::to_string(shape[i]);
  return s + "]";
}

int64_t DTensor::numel() const { return numel_of(shape); }

std::string DTensor::str() const { return std::string(dtype_name(dtype)) + shape_str(shape); }

static bool g_poison = false;
void set_alloc_poison(bool on) { g_poison = on; }

DTensor dalloc(const Gpu& g, DType d, const std::vector<int64_t>& shape, const std::string& what) {
  for (int64_t x : shape)
    if (x < 0) fail(thread_context(), ": negative dim in shape ", shape_str(shape), " of ", what);
  DTensor t;
  t.dtype = d;
  t.shape = shape;
  size_t n = t.bytes();
  void* p = nullptr;
  if (n > 0) {
    cudaError_t e = cudaMallocAsync(&p, n, g.stream);
    if (e == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      fail(thread_context(), ": out of GPU memory allocating ", n, " bytes for ", what, " ", t.str(), " on device ", g.device,
           " (", free_b >> 20, " MiB free of ", total_b >> 20, " MiB)");
    }
    CUDA_OK(e);
    if (g_poison) CUDA_OK(cudaMemsetAsync(p, 0xFF, n, g.stream));
  }
  cudaStream_t s = g.stream;
  t.buf = std::shared_ptr<void>(p, [s](void* q) {
    if (q) cudaFreeAsync(q, s);  // a deleter cannot throw; a failed free surfaces at the next sync
  });
  return t;
}

void dzero(const Gpu& g, const DTensor& t) {
  if (t.bytes()) CUDA_OK(cudaMemsetAsync(t.data(), 0, t.bytes(), g.stream));
}

DTensor dzeros(const Gpu& g, DType d, const std::vector<int64_t>& shape, const std::string& what) {
  DTensor t = dalloc(g, d, shape, what);
  dzero(g, t);
  return t;
}

DTensor upload_bytes(const Gpu& g, DType d, const std::vector<int64_t>& shape, const void* bytes, const std::string& what) {
  DTensor t = dalloc(g, d, shape, what);
  if (t.bytes()) {
    CUDA_OK(cudaMemcpyAsync(t.data(), bytes, t.bytes(), cudaMemcpyHostToDevice, g.stream));
    g.sync();  // the host buffer may die after return
  }
  return t;
}

DTensor upload(const Gpu& g, DType d, const std::vector<int64_t>& shape, const std::vector<double>& values, const std::string& what) {
  if (static_cast<int64_t>(values.size()) != numel_of(shape))
    fail(thread_context(), ": ", values.size(), " values for shape ", shape_str(shape), " of ", what);
  std::vector<uint8_t> b = encode(d, values);
  return upload_bytes(g, d, shape, b.data(), what);
}

std::vector<uint8_t> download_bytes(const Gpu& g, const DTensor& t) {
  std::vector<uint8_t> out(t.bytes());
  if (!out.empty()) CUDA_OK(cudaMemcpyAsync(out.data(), t.data(), out.size(), cudaMemcpyDeviceToHost, g.stream));
  g.sync();
  return out;
}

void download_stream(const Gpu& g, const DTensor& t, const std::function<void(const void*, size_t)>& sink) {
  size_t n = t.bytes();
  if (!n) return;
  for (int i = 0; i < 2; i++)
    if (!g.staging[i]) {
      CUDA_OK(cudaMallocHost(&g.staging[i], kStagingBytes));
      CUDA_OK(cudaEventCreateWithFlags(&g.staged[i], cudaEventDisableTiming));
    }
  const uint8_t* src = static_cast<const uint8_t*>(t.data());
  size_t off = 0, prev = 0;
  int cur = 0;
  while (off < n || prev) {
    size_t len = std::min(kStagingBytes, n - off);
    if (len) {
      CUDA_OK(cudaMemcpyAsync(g.staging[cur], src + off, len, cudaMemcpyDeviceToHost, g.stream));
      CUDA_OK(cudaEventRecord(g.staged[cur], g.stream));
    }
    if (prev) {  // the previous chunk, in the other buffer, while this one copies
      CUDA_OK(cudaEventSynchronize(g.staged[1 - cur]));
      sink(g.staging[1 - cur], prev);
    }
    off += len;
    prev = len;
    cur = 1 - cur;
  }
}

std::vector<double> download(const Gpu& g, const DTensor& t) {
  std::vector<uint8_t> b = download_bytes(g, t);
  return decode(t.dtype, b.data(), static_cast<size_t>(t.numel()));
}

}  // namespace spx
