#include "dtype.hpp"

#include <cfenv>
#include <cmath>
#include <cstring>
#include <limits>

#include "error.hpp"

namespace spx {

const char* dtype_name(DType d) {
  switch (d) {
    case DType::F64: return "F64";
    case DType::F32: return "F32";
    case DType::BF16: return "BF16";
    case DType::F16: return "F16";
    case DType::I64: return "I64";
    case DType::I32: return "I32";
  }
  return "?";
}

DType parse_dtype(const std::string& s) {
  if (s == "F64" || s == "fp64" || s == "f64" || s == "float64") return DType::F64;
  if (s == "F32" || s == "fp32" || s == "f32" || s == "float32") return DType::F32;
  if (s == "BF16" || s == "bf16" || s == "bfloat16") return DType::BF16;
  if (s == "F16" || s == "fp16" || s == "f16" || s == "float16") return DType::F16;
  if (s == "I64" || s == "i64" || s == "int64") return DType::I64;
  if (s == "I32" || s == "i32" || s == "int32") return DType::I32;
  fail("unknown dtype \"", s, "\" (want F64, F32, BF16, F16, I64 or I32)");
}

size_t dtype_size(DType d) {
  switch (d) {
    case DType::F64:
    case DType::I64: return 8;
    case DType::F32:
    case DType::I32: return 4;
    case DType::BF16:
    case DType::F16: return 2;
  }
  return 0;
}

bool dtype_is_float(DType d) { return d == DType::F64 || d == DType::F32 || d == DType::BF16 || d == DType::F16; }

namespace {

// round_to_format rounds x to a binary format with mant_bits stored mantissa bits, smallest
// normal exponent emin and largest finite value max_val; ties to even, overflow to ±Inf. The
// steps mirror tensor's floatFormat.round: every operation but the final rounding is exact.
double round_to_format(double x, int mant_bits, int emin, double max_val) {
  if (x == 0 || std::isnan(x) || std::isinf(x)) return x;
  int exp;
  std::frexp(x, &exp);  // x = frac·2^exp, |frac| in [0.5,1)
  int q = std::max(exp - 1, emin) - mant_bits;
  // nearbyint rounds half to even under the default rounding mode, like math.RoundToEven.
  double r = std::ldexp(std::nearbyint(std::ldexp(x, -q)), q);
  if (std::fabs(r) > max_val) return std::copysign(std::numeric_limits<double>::infinity(), x);
  return r;
}

constexpr double kBF16Max = 0x1.fep127;
constexpr double kF16Max = 65504;

uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

}  // namespace

uint16_t bf16_bits(double x) {
  double r = round_to_format(x, 7, -126, kBF16Max);
  if (std::isnan(r)) return static_cast<uint16_t>(0x7fc0 | (std::signbit(x) ? 0x8000 : 0));
  return static_cast<uint16_t>(f32_bits(static_cast<float>(r)) >> 16);  // r is exact in float32
}

double bf16_value(uint16_t b) { return f32_from_bits(static_cast<uint32_t>(b) << 16); }

uint16_t bf16_bits_f32(float x) {
  uint32_t u = f32_bits(x);
  if (std::isnan(x)) return static_cast<uint16_t>(0x7fc0 | ((u >> 16) & 0x8000));
  u += 0x7fff + ((u >> 16) & 1);  // round to nearest even on the dropped 16 bits
  return static_cast<uint16_t>(u >> 16);
}

uint16_t f16_bits(double x) {
  double r = round_to_format(x, 10, -14, kF16Max);
  uint16_t sign = std::signbit(r) ? 0x8000 : 0;
  double a = std::fabs(r);
  if (std::isnan(r)) return sign | 0x7e00;
  if (std::isinf(r)) return sign | 0x7c00;
  if (a == 0) return sign;
  int exp;
  std::frexp(a, &exp);
  int e = exp - 1;
  if (e < -14) return sign | static_cast<uint16_t>(std::ldexp(a, 24));  // subnormal
  uint16_t mant = static_cast<uint16_t>(std::ldexp(a, -e) * 1024 - 1024);
  return sign | static_cast<uint16_t>((e + 15) << 10) | mant;
}

double f16_value(uint16_t b) {
  double sign = (b & 0x8000) ? -1 : 1;
  int e = (b >> 10) & 0x1f;
  double m = b & 0x3ff;
  if (e == 0) return sign * std::ldexp(m, -24);
  if (e == 0x1f) return m == 0 ? sign * std::numeric_limits<double>::infinity() : std::numeric_limits<double>::quiet_NaN();
  return sign * std::ldexp(1 + m / 1024, e - 15);
}

namespace {
template <typename T>
T load_le(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));  // the executor runs on little-endian x86-64 only
  return v;
}

// round_int is DType.Round for integers: half to even, saturating, NaN → 0.
double round_int(double x, double lo, double hi) {
  if (std::isnan(x)) return 0;
  return std::max(lo, std::min(hi, std::nearbyint(x)));
}
}  // namespace

std::vector<double> decode(DType d, const uint8_t* b, size_t n) {
  std::vector<double> out(n);
  size_t sz = dtype_size(d);
  for (size_t i = 0; i < n; i++) {
    const uint8_t* p = b + i * sz;
    switch (d) {
      case DType::F64: out[i] = load_le<double>(p); break;
      case DType::F32: out[i] = load_le<float>(p); break;
      case DType::BF16: out[i] = bf16_value(load_le<uint16_t>(p)); break;
      case DType::F16: out[i] = f16_value(load_le<uint16_t>(p)); break;
      case DType::I64: out[i] = static_cast<double>(load_le<int64_t>(p)); break;
      case DType::I32: out[i] = load_le<int32_t>(p); break;
    }
  }
  return out;
}

std::vector<uint8_t> encode(DType d, const std::vector<double>& v) {
  size_t sz = dtype_size(d);
  std::vector<uint8_t> out(v.size() * sz);
  for (size_t i = 0; i < v.size(); i++) {
    uint8_t* p = out.data() + i * sz;
    double x = v[i];
    switch (d) {
      case DType::F64: std::memcpy(p, &x, 8); break;
      case DType::F32: {
        float f = static_cast<float>(x);
        std::memcpy(p, &f, 4);
        break;
      }
      case DType::BF16: {
        uint16_t h = bf16_bits(x);
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::F16: {
        uint16_t h = f16_bits(x);
        std::memcpy(p, &h, 2);
        break;
      }
      case DType::I64: {
        // −2^63 … 2^63 (the upper bound rounds to 2^63 in double; clamp below it).
        double r = round_int(x, -9223372036854775808.0, 9223372036854774784.0);
        int64_t i64 = static_cast<int64_t>(r);
        if (x >= 9223372036854775807.0) i64 = INT64_MAX;
        std::memcpy(p, &i64, 8);
        break;
      }
      case DType::I32: {
        int32_t i32 = static_cast<int32_t>(round_int(x, -2147483648.0, 2147483647.0));
        std::memcpy(p, &i32, 4);
        break;
      }
    }
  }
  return out;
}

}  // namespace spx
