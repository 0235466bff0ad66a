// generate.cu: generated starting tensors (emit.hpp's GenTensor) on the GPU, bit-exact with the
// host's generate_host and Go's simulate.Generated.Tensor. Built with -fmad=false (Makefile):
// the RNG's log and cos polynomials must not fuse multiply-adds, as Go does not on GOAMD64=v1.
#include "../host/rng.hpp"
#include "../host/rng_core.hpp"
#include "check.cuh"
#include "kernels.cuh"
#include "numeric.cuh"

namespace spx::kern {

namespace {

// gen_k writes element k of the [outer, len + (dim 0: pad), inner] shard: generated rows first,
// then the zero padding rows (dim 0 only).
template <typename T>
__global__ void gen_k(T* out, int64_t n, uint64_t key, int64_t full_dim, int64_t start, int64_t len, int64_t local_dim, int64_t inner,
                      bool norm, double std_, double fan_in) {
  for (int64_t k = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; k < n; k += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    int64_t c = k % inner, rest = k / inner, r = rest % local_dim, o = rest / local_dim;
    double v = 0;
    if (r < len) {
      uint64_t flat = static_cast<uint64_t>((o * full_dim + start + r) * inner + c);
      v = rngcore::init_value(norm, std_, fan_in, rngcore::normal_at(key, flat));
    }
    st_d(out, k, v);
  }
}

}  // namespace

DTensor generate(const Gpu& g, const GenTensor& spec, uint64_t seed, DType d, const std::string& what) {
  DTensor t = dalloc(g, d, spec.local_shape(), what);
  int64_t n = t.numel();
  if (!n) return t;
  int64_t inner = 1;
  for (size_t i = spec.dim + 1; i < spec.shape.size(); i++) inner *= spec.shape[i];
  int64_t local_dim = spec.local_shape()[spec.dim];
  uint64_t key = RNG(seed, spec.name).key();
  int64_t blocks = (n + 255) / 256;
  if (blocks > 65535 * 8) blocks = 65535 * 8;
  auto launch = [&](auto* p) {
    gen_k<<<static_cast<unsigned>(blocks), 256, 0, g.stream>>>(p, n, key, spec.shape[spec.dim], spec.start, spec.len, local_dim, inner,
                                                               spec.norm, spec.std_, static_cast<double>(spec.fan_in));
  };
  switch (d) {
    case DType::F64: launch(t.as<double>()); break;
    case DType::F32: launch(t.as<float>()); break;
    case DType::BF16: launch(t.as<bf16>()); break;
    default: fail(thread_context(), ": generate ", what, " as ", dtype_name(d), ": want a float dtype");
  }
  KERNEL_OK("generate");
  return t;
}

}  // namespace spx::kern
