// rng.hpp: the counter RNG of tensor/rng.go, bit-exact. A value depends only on (seed, tensor
// name, index):
//   key    = FNV-1a-64(name) XOR (seed · 0x9E3779B97F4A7C15)
//   bits_i = splitmix64(key + i · 0xD1B54A32D192ED03)
//   U_i    = (bits_i >> 11) · 2^-53
//   N_i    = sqrt(-2 ln(1-U_{2i})) · cos(2π U_{2i+1})
// Normal uses ports of Go's math.Log (the amd64 assembly) and math.Cos, not libm, so that the
// bits agree with Go's on every input. Build with -ffp-contract=off (the Makefile does): a fused
// multiply-add would change the bits, as it does in Go on GOAMD64=v3.
#pragma once

#include <cstdint>
#include <string>

namespace spx {

uint64_t splitmix64(uint64_t z);
uint64_t fnv1a64(const std::string& s);
double go_log(double x);
double go_cos(double x);

class RNG {
 public:
  RNG(uint64_t seed, const std::string& name);
  uint64_t bits(uint64_t i) const { return splitmix64(key_ + i * 0xD1B54A32D192ED03ULL); }
  uint64_t key() const { return key_; }
  double uniform(uint64_t i) const { return static_cast<double>(bits(i) >> 11) * 0x1p-53; }
  double normal(uint64_t i) const;
  int64_t intn(uint64_t i, int64_t n) const;

 private:
  uint64_t key_;
};

}  // namespace spx
