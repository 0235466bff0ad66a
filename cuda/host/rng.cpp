#include "rng.hpp"

#include <cmath>

#include "rng_core.hpp"

namespace spx {

uint64_t splitmix64(uint64_t z) { return rngcore::splitmix64(z); }

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

RNG::RNG(uint64_t seed, const std::string& name) : key_(fnv1a64(name) ^ (seed * 0x9E3779B97F4A7C15ULL)) {}

double RNG::normal(uint64_t i) const { return rngcore::normal_at(key_, i); }

int64_t RNG::intn(uint64_t i, int64_t n) const {
  unsigned __int128 p = static_cast<unsigned __int128>(bits(i)) * static_cast<uint64_t>(n);
  return static_cast<int64_t>(p >> 64);
}

double go_log(double x) { return rngcore::go_log(x); }
double go_cos(double x) { return rngcore::go_cos(x); }

}  // namespace spx
