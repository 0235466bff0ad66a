package tensor

import (
	"hash/fnv"
	"math"
	"math/bits"
)

// RNG is a counter-based generator: the value at index i depends only on (seed, name, i), so a
// rank can generate its shard of a parameter without the rest, and every executor (Go, C++,
// Python) produces the same bits. The scheme, easy to port:
//
//	key    = FNV-1a-64(name) XOR (seed · 0x9E3779B97F4A7C15)
//	bits_i = splitmix64(key + i · 0xD1B54A32D192ED03)
//	U_i    = (bits_i >> 11) · 2^-53                   uniform in [0,1)
//	N_i    = sqrt(-2 ln(1-U_{2i})) · cos(2π U_{2i+1})   standard normal (Box–Muller)
type RNG struct{ key uint64 }

// NewRNG returns the generator for one named tensor.
func NewRNG(seed uint64, name string) RNG {
	h := fnv.New64a()
	h.Write([]byte(name))
	return RNG{key: h.Sum64() ^ (seed * 0x9E3779B97F4A7C15)}
}

// SplitMix64 is the finaliser of Steele et al.'s SplitMix64.
func SplitMix64(z uint64) uint64 {
	z += 0x9E3779B97F4A7C15
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9
	z = (z ^ (z >> 27)) * 0x94D049BB133111EB
	return z ^ (z >> 31)
}

// Bits is the raw 64-bit value at counter i.
func (r RNG) Bits(i uint64) uint64 { return SplitMix64(r.key + i*0xD1B54A32D192ED03) }

// Uniform is a float in [0,1) at counter i.
func (r RNG) Uniform(i uint64) float64 { return float64(r.Bits(i)>>11) * 0x1p-53 }

// Normal is a standard normal value for element i (it uses counters 2i and 2i+1).
func (r RNG) Normal(i uint64) float64 {
	u1, u2 := r.Uniform(2*i), r.Uniform(2*i+1)
	return math.Sqrt(-2*math.Log(1-u1)) * math.Cos(2*math.Pi*u2)
}

// Intn is an integer in [0,n) for element i (by multiply-high, so unbiased enough for ids).
func (r RNG) Intn(i uint64, n int) int {
	hi, _ := bits.Mul64(r.Bits(i), uint64(n))
	return int(hi)
}

// NormalTensor fills a tensor of the given shape with std·N(0,1) values, element j (flat
// index) from counter j. A rank that needs only a shard calls Normal with each element's
// global flat index instead.
func (r RNG) NormalTensor(std float64, shape ...int) *Dense {
	t := New(shape...)
	for j := range t.Data {
		t.Data[j] = std * r.Normal(uint64(j))
	}
	return t
}
