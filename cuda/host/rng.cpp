#include "rng.hpp"

#include <cmath>
#include <cstring>
#include <limits>

namespace spx {

uint64_t splitmix64(uint64_t z) {
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

RNG::RNG(uint64_t seed, const std::string& name) : key_(fnv1a64(name) ^ (seed * 0x9E3779B97F4A7C15ULL)) {}

double RNG::normal(uint64_t i) const {
  double u1 = uniform(2 * i), u2 = uniform(2 * i + 1);
  // Go: math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2); 2π is the double 0x401921fb54442d18.
  return std::sqrt(-2 * go_log(1 - u1)) * go_cos(0x1.921fb54442d18p+2 * u2);
}

int64_t RNG::intn(uint64_t i, int64_t n) const {
  unsigned __int128 p = static_cast<unsigned __int128>(bits(i)) * static_cast<uint64_t>(n);
  return static_cast<int64_t>(p >> 64);
}

// go_log follows Go's amd64 archLog step by step (FreeBSD's e_log.c reduction and polynomial):
// x = 2^k·(1+f) with 1+f in [√2/2, √2), then log(1+f) = f − hfsq + s·(hfsq+R).
double go_log(double x) {
  uint64_t bx;
  std::memcpy(&bx, &x, 8);
  if ((bx & ~(1ULL << 63)) == 0) return -std::numeric_limits<double>::infinity();
  if (static_cast<int64_t>(bx) < 0) return std::numeric_limits<double>::quiet_NaN();
  if (bx >= 0x7FF0000000000000ULL) return x;  // +Inf or NaN
  const double Ln2Hi = 6.93147180369123816490e-01, Ln2Lo = 1.90821492927058770002e-10;
  const double L1 = 6.666666666666735130e-01, L2 = 3.999999999940941908e-01, L3 = 2.857142874366239149e-01,
               L4 = 2.222219843214978396e-01, L5 = 1.818357216161805012e-01, L6 = 1.531383769920937332e-01,
               L7 = 1.479819860511658591e-01;
  // f1, k = frexp(x) from the raw bits (the assembly does not renormalise subnormals either).
  uint64_t fb = (bx & 0x000FFFFFFFFFFFFFULL) | 0x3FE0000000000000ULL;
  double f1;
  std::memcpy(&f1, &fb, 8);
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
double go_cos(double x) {
  static const double sin_c[] = {1.58962301576546568060e-10, -2.50507477628578072866e-8, 2.75573136213857245213e-6,
                                 -1.98412698295895385996e-4, 8.33333333332211858878e-3,  -1.66666666666666307295e-1};
  static const double cos_c[] = {-1.13585365213876817300e-11, 2.08757008419747316778e-9, -2.75573141792967388112e-7,
                                 2.48015872888517045348e-5,   -1.38888888888730564116e-3, 4.16666666666665929218e-2};
  const double PI4A = 7.85398125648498535156e-1, PI4B = 3.77489470793079817668e-8, PI4C = 2.69515142907905952645e-15;
  if (std::isnan(x) || std::isinf(x)) return std::numeric_limits<double>::quiet_NaN();
  bool sign = false;
  x = std::fabs(x);
  if (x >= 0x1p29) return std::numeric_limits<double>::quiet_NaN();
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
    y = z + z * zz * ((((((sin_c[0] * zz) + sin_c[1]) * zz + sin_c[2]) * zz + sin_c[3]) * zz + sin_c[4]) * zz + sin_c[5]);
  } else {
    y = 1.0 - 0.5 * zz + zz * zz * ((((((cos_c[0] * zz) + cos_c[1]) * zz + cos_c[2]) * zz + cos_c[3]) * zz + cos_c[4]) * zz + cos_c[5]);
  }
  return sign ? -y : y;
}

}  // namespace spx
