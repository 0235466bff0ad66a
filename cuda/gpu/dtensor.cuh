// dtensor.cuh: device tensors. A DTensor owns (shares) a stream-ordered allocation; shapes are
// row-major. Allocation failures are errors naming the tensor and the memory left.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../host/dtype.hpp"

namespace spx {

// Gpu is one rank's device state: its device, stream and cuBLAS handle.
struct Gpu {
  int rank = 0;
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  // Pinned host staging for downloads (download_stream), allocated on first use.
  mutable void* staging[2] = {nullptr, nullptr};
  mutable cudaEvent_t staged[2] = {nullptr, nullptr};
  void init(int rank, int device);  // selects the device, creates stream and handle
  void destroy();
  void sync() const;  // waits for the stream; errors carry the thread's context
};

struct DTensor {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  std::shared_ptr<void> buf;

  int64_t numel() const;
  size_t bytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype); }
  void* data() const { return buf.get(); }
  template <typename T>
  T* as() const { return static_cast<T*>(buf.get()); }
  std::string str() const;  // "BF16[2,8,16]"
};

int64_t numel_of(const std::vector<int64_t>& shape);
std::string shape_str(const std::vector<int64_t>& shape);

// set_alloc_poison makes dalloc fill new tensors with 0xFF bytes (NaN in every float dtype)
// instead of zeros, so tests see any element a kernel forgot to write.
void set_alloc_poison(bool on);

// dalloc allocates a tensor on g's stream from the stream-ordered pool (no host sync once the
// pool has grown); its contents are undefined (NaN-filled under set_alloc_poison): every kernel
// writes every element of its outputs. `what` names it in an out-of-memory error.
DTensor dalloc(const Gpu& g, DType d, const std::vector<int64_t>& shape, const std::string& what);
// dzeros allocates a zero-filled tensor; dzero zeroes t (stream-ordered).
DTensor dzeros(const Gpu& g, DType d, const std::vector<int64_t>& shape, const std::string& what);
void dzero(const Gpu& g, const DTensor& t);
// upload converts host values to dtype d (RNE for floats, as the trace writer rounds) and copies.
DTensor upload(const Gpu& g, DType d, const std::vector<int64_t>& shape, const std::vector<double>& values, const std::string& what);
DTensor upload_bytes(const Gpu& g, DType d, const std::vector<int64_t>& shape, const void* bytes, const std::string& what);
// download copies back (synchronising the stream): raw little-endian bytes, or decoded values.
std::vector<uint8_t> download_bytes(const Gpu& g, const DTensor& t);
std::vector<double> download(const Gpu& g, const DTensor& t);
// download_stream hands t's bytes to sink in order, in chunks staged through pinned memory (the
// copy of one chunk overlaps the sink of the previous); it returns after the last chunk.
void download_stream(const Gpu& g, const DTensor& t, const std::function<void(const void*, size_t)>& sink);

}  // namespace spx
