// dtype.hpp: the storage dtypes of traces (safetensors names) and the exact conversions the
// executor needs: float64 → bf16/f16 with round-to-nearest-even straight from float64, the same
// rule as tensor.BF16Bits / tensor.F16Bits (never truncating, never rounding twice).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace spx {

enum class DType : uint8_t { F64, F32, BF16, F16, I64, I32 };

const char* dtype_name(DType d);
// parse_dtype accepts safetensors names and the CLI's aliases (fp32, bf16, …); throws otherwise.
DType parse_dtype(const std::string& s);
size_t dtype_size(DType d);
bool dtype_is_float(DType d);

// bf16_bits is the bf16 bit pattern of x rounded to nearest even (NaN → quiet NaN with x's sign).
uint16_t bf16_bits(double x);
double bf16_value(uint16_t b);
// bf16_bits_f32 is the bf16 pattern of a float (the GPU's __float2bfloat16_rn, for host checks).
uint16_t bf16_bits_f32(float x);
uint16_t f16_bits(double x);
double f16_value(uint16_t b);

// decode converts n little-endian elements of dtype d to doubles.
std::vector<double> decode(DType d, const uint8_t* bytes, size_t n);
// encode writes values rounded to d as canonical little-endian bytes (integers round half to
// even and saturate, as tensor.DType.Round does).
std::vector<uint8_t> encode(DType d, const std::vector<double>& v);

}  // namespace spx
