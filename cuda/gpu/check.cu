#include "check.cuh"

namespace spx {

std::string& thread_context() {
  thread_local std::string ctx;
  return ctx;
}

static std::string where(const char* call, const char* file, int line) {
  std::string s = thread_context();
  if (!s.empty()) s += ": ";
  return s + call + " (" + file + ":" + std::to_string(line) + ")";
}

void cuda_fail(cudaError_t e, const char* call, const char* file, int line) {
  std::string msg = where(call, file, line) + ": CUDA error " + cudaGetErrorName(e) + ": " + cudaGetErrorString(e);
  if (e == cudaErrorMemoryAllocation) {
    size_t free_b = 0, total_b = 0;
    cudaGetLastError();  // clear the sticky-free allocation error before asking
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess)
      msg += cat(" (out of GPU memory: ", free_b >> 20, " MiB free of ", total_b >> 20, " MiB)");
    else
      msg += " (out of GPU memory)";
  }
  throw Error(msg);
}

void nccl_fail(ncclResult_t r, const char* call, const char* file, int line) {
  std::string msg = where(call, file, line) + ": NCCL error " + std::to_string(static_cast<int>(r)) + ": " + ncclGetErrorString(r);
  const char* last = ncclGetLastError(nullptr);
  if (last && *last) msg += std::string(" (") + last + ")";
  throw Error(msg);
}

void cublas_fail(cublasStatus_t s, const char* call, const char* file, int line) {
  throw Error(where(call, file, line) + ": cuBLAS error " + cublasGetStatusName(s) + ": " + cublasGetStatusString(s));
}

}  // namespace spx
