// numeric.cuh: device-side element access for the kernels. acc_t<T> is the accumulation type of
// storage type T (fp32 for fp32 and bf16, fp64 for fp64); ld reads an element as acc_t, st
// rounds a value to the storage type (nearest even), st_d rounds a double straight to T (never
// through float first, so bf16 rounds once, as the host's encode does).
#pragma once

#include <cuda_bf16.h>

#include <cstdint>

namespace spx::kern {

using bf16 = __nv_bfloat16;

template <typename T>
struct Acc {
  using type = float;
};
template <>
struct Acc<double> {
  using type = double;
};
template <typename T>
using acc_t = typename Acc<T>::type;

__device__ __forceinline__ float ld(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float ld(const bf16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ double ld(const double* p, int64_t i) { return p[i]; }
__device__ __forceinline__ void st(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void st(bf16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }
__device__ __forceinline__ void st(double* p, int64_t i, double v) { p[i] = v; }

// bf16_from_double rounds x to bf16, nearest even, in one step: x is first cut to float toward
// zero with the lost bits kept as a sticky last bit (round to odd: float has 16 more bits than
// bf16, so the second rounding cannot meet a false tie), then rounded to bf16.
__device__ __forceinline__ bf16 bf16_from_double(double x) {
  if (x != x) return __ushort_as_bfloat16(static_cast<unsigned short>(0x7fc0 | (__double2hiint(x) < 0 ? 0x8000 : 0)));
  float f = __double2float_rz(x);
  unsigned u = __float_as_uint(f);
  if (static_cast<double>(f) != x && (u & 0x7f800000u) != 0x7f800000u) u |= 1;  // sticky
  if ((u & 0x7fffffffu) > 0x7f800000u) return __ushort_as_bfloat16(static_cast<unsigned short>((u >> 16) | 0x40));
  u += 0x7fffu + ((u >> 16) & 1u);
  return __ushort_as_bfloat16(static_cast<unsigned short>(u >> 16));
}

template <typename T>
__device__ __forceinline__ void st_d(T* p, int64_t i, double v) { p[i] = static_cast<T>(v); }
template <>
__device__ __forceinline__ void st_d<float>(float* p, int64_t i, double v) { p[i] = __double2float_rn(v); }
template <>
__device__ __forceinline__ void st_d<bf16>(bf16* p, int64_t i, double v) { p[i] = bf16_from_double(v); }

}  // namespace spx::kern
