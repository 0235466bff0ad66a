// check.cuh: every CUDA, NCCL and cuBLAS call goes through one of these macros. A failure throws
// spx::Error naming the call, the rank and the op being executed (the thread's context), so a
// log line from a GPU machine says which rank died doing what.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "../host/error.hpp"

namespace spx {

// Context is what the calling thread is doing, e.g. "rank 3, op #17 all_gather tp[2 3]".
// Each executor thread sets its own.
std::string& thread_context();

struct ContextScope {
  std::string saved;
  explicit ContextScope(const std::string& ctx) : saved(thread_context()) { thread_context() = ctx; }
  ~ContextScope() { thread_context() = saved; }
};

[[noreturn]] void cuda_fail(cudaError_t e, const char* call, const char* file, int line);
[[noreturn]] void nccl_fail(ncclResult_t r, const char* call, const char* file, int line);
[[noreturn]] void cublas_fail(cublasStatus_t s, const char* call, const char* file, int line);

}  // namespace spx

#define CUDA_OK(call)                                                  \
  do {                                                                 \
    cudaError_t e_ = (call);                                           \
    if (e_ != cudaSuccess) ::spx::cuda_fail(e_, #call, __FILE__, __LINE__); \
  } while (0)

// KERNEL_OK checks a launch (configuration errors) right after it.
#define KERNEL_OK(what) CUDA_OK(cudaGetLastError())

#define CUBLAS_OK(call)                                                     \
  do {                                                                      \
    cublasStatus_t s_ = (call);                                             \
    if (s_ != CUBLAS_STATUS_SUCCESS) ::spx::cublas_fail(s_, #call, __FILE__, __LINE__); \
  } while (0)

// NCCL_OK accepts ncclInProgress: the executor's communicators are non-blocking, and the comm
// layer waits for completion itself (with a timeout) instead of blocking inside NCCL.
#define NCCL_OK(call)                                                                \
  do {                                                                               \
    ncclResult_t r_ = (call);                                                        \
    if (r_ != ncclSuccess && r_ != ncclInProgress) ::spx::nccl_fail(r_, #call, __FILE__, __LINE__); \
  } while (0)
