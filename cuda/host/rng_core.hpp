// rng_core.hpp: the arithmetic of the counter RNG (rng.hpp) and of generated starting tensors
// (emit.hpp's GenTensor), written once for the host (g++) and the GPU (nvcc): splitmix64, Go's
// math.Log and math.Cos ported step by step, and the value rule of a generated parameter. Every
// translation unit that includes it must be built without fused multiply-adds (the Makefile:
// -ffp-contract=off for g++, -fmad=false for the nvcc unit that generates on the GPU); division
// and sqrt in double are correctly rounded on both.
#pragma once

#include <cmath>
#include <cstdint>

#ifdef __CUDACC__
#define SPX_HD __host__ __device__ __forceinline__
#else
#define SPX_HD inline
#endif

namespace spx::rngcore {

SPX_HD uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

SPX_HD uint64_t bits_of(double x) {
  union {
    double d;
    uint64_t u;
  } v;
  v.d = x;
  return v.u;
}

SPX_HD double double_of(uint64_t u) {
  union {
    double d;
    uint64_t u;
  } v;
  v.u = u;
  return v.d;
}

SPX_HD uint64_t bits_at(uint64_t key, uint64_t i) { return splitmix64(key + i * 0xD1B54A32D192ED03ULL); }
SPX_HD double uniform_at(uint64_t key, uint64_t i) { return static_cast<double>(bits_at(key, i) >> 11) * 0x1p-53; }

// go_log follows Go's amd64 archLog step by step (FreeBSD's e_log.c reduction and polynomial):
// x = 2^k·(1+f) with 1+f in [√2/2, √2), then log(1+f) = f − hfsq + s·(hfsq+R).
SPX_HD double go_log(double x) {
  uint64_t bx = bits_of(x);
  if ((bx & ~(1ULL << 63)) == 0) return double_of(0xFFF0000000000000ULL);  // −Inf
  if (static_cast<int64_t>(bx) < 0) return double_of(0x7FF8000000000001ULL);  // NaN
  if (bx >= 0x7FF0000000000000ULL) return x;                                  // +Inf or NaN
  const double Ln2Hi = 6.93147180369123816490e-01, Ln2Lo = 1.90821492927058770002e-10;
  const double L1 = 6.666666666666735130e-01, L2 = 3.999999999940941908e-01, L3 = 2.857142874366239149e-01,
               L4 = 2.222219843214978396e-01, L5 = 1.818357216161805012e-01, L6 = 1.531383769920937332e-01,
               L7 = 1.479819860511658591e-01;
  // f1, k = frexp(x) from the raw bits (the assembly does not renormalise subnormals either).
  double f1 = double_of((bx & 0x000FFFFFFFFFFFFFULL) | 0x3FE0000000000000ULL);
  double k = static_cast<double>(static_cast<int>((bx >> 52) & 0x7FF) - 0x3FE);
  if (f1 < 7.07106781186547524401e-01) {
    k -= 1;
    f1 *= 2;
  }
  double f = f1 - 1;
  double s = f / (2 + f);
  double s2 = s * s;
  double s4 = s2 * s2;
  double t1 = s2 * (L1 + s4 * (L3 + s4 * (L5 + s4 * L7)));
  double t2 = s4 * (L2 + s4 * (L4 + s4 * L6));
  double R = t1 + t2;
  double hfsq = 0.5 * f * f;
  return k * Ln2Hi - ((hfsq - (s * (hfsq + R) + k * Ln2Lo)) - f);
}

// go_cos follows Go's pure-Go math.Cos (Cephes' cosine, octant reduction by π/4 split in three
// parts). Arguments here are in [0, 2π), far below Go's Payne–Hanek threshold 2^29, which this
// port therefore does not implement: larger arguments return NaN rather than a wrong value.
SPX_HD double go_cos(double x) {
  const double S0 = 1.58962301576546568060e-10, S1 = -2.50507477628578072866e-8, S2 = 2.75573136213857245213e-6,
               S3 = -1.98412698295895385996e-4, S4 = 8.33333333332211858878e-3, S5 = -1.66666666666666307295e-1;
  const double C0 = -1.13585365213876817300e-11, C1 = 2.08757008419747316778e-9, C2 = -2.75573141792967388112e-7,
               C3 = 2.48015872888517045348e-5, C4 = -1.38888888888730564116e-3, C5 = 4.16666666666665929218e-2;
  const double PI4A = 7.85398125648498535156e-1, PI4B = 3.77489470793079817668e-8, PI4C = 2.69515142907905952645e-15;
  const double kNaN = double_of(0x7FF8000000000001ULL);
  if (x != x || x - x != 0) return kNaN;  // NaN or ±Inf
  bool sign = false;
  if (x < 0) x = -x;
  if (x >= 0x1p29) return kNaN;
  uint64_t j = static_cast<uint64_t>(x * 0x1.45f306dc9c883p+0);  // x·(4/π), Go's constant 4/Pi
  double y = static_cast<double>(j);
  if (j & 1) {
    j++;
    y++;
  }
  j &= 7;
  double z = ((x - y * PI4A) - y * PI4B) - y * PI4C;
  if (j > 3) {
    j -= 4;
    sign = !sign;
  }
  if (j > 1) sign = !sign;
  double zz = z * z;
  if (j == 1 || j == 2) {
    y = z + z * zz * ((((((S0 * zz) + S1) * zz + S2) * zz + S3) * zz + S4) * zz + S5);
  } else {
    y = 1.0 - 0.5 * zz + zz * zz * ((((((C0 * zz) + C1) * zz + C2) * zz + C3) * zz + C4) * zz + C5);
  }
  return sign ? -y : y;
}

// normal_at is Go's tensor.RNG.Normal: Box–Muller on two uniforms, with math.Log and math.Cos.
SPX_HD double normal_at(uint64_t key, uint64_t i) {
  double u1 = uniform_at(key, 2 * i), u2 = uniform_at(key, 2 * i + 1);
  // Go: math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2); 2π is the double 0x401921fb54442d18.
  return sqrt(-2 * go_log(1 - u1)) * go_cos(0x1.921fb54442d18p+2 * u2);
}

// init_value is oracle.InitRule.Value: 1 + std·n for a norm weight, n/√fan_in otherwise.
SPX_HD double init_value(bool norm, double std_, double fan_in, double n) { return norm ? 1 + std_ * n : n / sqrt(fan_in); }

}  // namespace spx::rngcore
