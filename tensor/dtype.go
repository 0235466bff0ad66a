package tensor

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"slices"
)

// DType is a storage dtype of a trace. Values are always computed in float64; a dtype says how
// they are rounded and laid out as bytes. Names are safetensors' dtype strings.
type DType uint8

const (
	F64 DType = iota + 1
	F32
	BF16
	F16
	I64
	I32
)

var dtypeNames = map[DType]string{F64: "F64", F32: "F32", BF16: "BF16", F16: "F16", I64: "I64", I32: "I32"}

func (d DType) String() string {
	if s, ok := dtypeNames[d]; ok {
		return s
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// ParseDType accepts safetensors names (F32, BF16, …) and the lower-case aliases the CLI uses
// (fp32, bf16, float32, …).
func ParseDType(s string) (DType, error) {
	switch s {
	case "F64", "fp64", "f64", "float64":
		return F64, nil
	case "F32", "fp32", "f32", "float32":
		return F32, nil
	case "BF16", "bf16", "bfloat16":
		return BF16, nil
	case "F16", "fp16", "f16", "float16":
		return F16, nil
	case "I64", "i64", "int64":
		return I64, nil
	case "I32", "i32", "int32":
		return I32, nil
	}
	return 0, fmt.Errorf("unknown dtype %q (want F64, F32, BF16, F16, I64 or I32)", s)
}

// Size is the number of bytes of one element.
func (d DType) Size() int {
	switch d {
	case F64, I64:
		return 8
	case F32, I32:
		return 4
	case BF16, F16:
		return 2
	}
	return 0
}

// IsFloat reports whether d is a floating-point dtype.
func (d DType) IsFloat() bool { return d == F64 || d == F32 || d == BF16 || d == F16 }

// floatFormat describes a binary floating-point format: stored mantissa bits, the smallest
// normal exponent and the largest finite value.
type floatFormat struct {
	mantBits int
	emin     int
	maxVal   float64
}

var (
	bf16Format = floatFormat{mantBits: 7, emin: -126, maxVal: 0x1.fep127}
	fp16Format = floatFormat{mantBits: 10, emin: -14, maxVal: 65504}
)

// round rounds x to the nearest value of f, ties to even, overflowing to ±Inf. Going straight
// from float64 avoids the double rounding of float64→float32→bf16.
func (f floatFormat) round(x float64) float64 {
	if x == 0 || math.IsNaN(x) || math.IsInf(x, 0) {
		return x
	}
	_, exp := math.Frexp(x) // x = frac·2^exp, |frac| in [0.5,1)
	q := max(exp-1, f.emin) - f.mantBits
	r := math.Ldexp(math.RoundToEven(math.Ldexp(x, -q)), q)
	if math.Abs(r) > f.maxVal {
		return math.Copysign(math.Inf(1), x)
	}
	return r
}

// Round rounds x to the nearest value representable in d (ties to even; integers round half to
// even and saturate).
func (d DType) Round(x float64) float64 {
	switch d {
	case F32:
		return float64(float32(x))
	case BF16:
		return bf16Format.round(x)
	case F16:
		return fp16Format.round(x)
	case I64:
		return float64(int64(clampInt(x, math.MinInt64, math.MaxInt64)))
	case I32:
		return clampInt(x, math.MinInt32, math.MaxInt32)
	}
	return x
}

func clampInt(x, lo, hi float64) float64 {
	if math.IsNaN(x) {
		return 0
	}
	return math.Max(lo, math.Min(hi, math.RoundToEven(x)))
}

// RoundAll returns a copy of t with every value rounded to d.
func (t *Dense) RoundAll(d DType) *Dense {
	out := t.Clone()
	for i, v := range out.Data {
		out.Data[i] = d.Round(v)
	}
	return out
}

// BF16Bits is the bf16 bit pattern of x after rounding.
func BF16Bits(x float64) uint16 {
	r := bf16Format.round(x)
	if math.IsNaN(r) {
		return 0x7fc0 | uint16(math.Float64bits(x)>>48)&0x8000
	}
	return uint16(math.Float32bits(float32(r)) >> 16) // r is exact in float32
}

// BF16FromBits decodes a bf16 bit pattern.
func BF16FromBits(b uint16) float64 { return float64(math.Float32frombits(uint32(b) << 16)) }

// F16Bits is the IEEE half bit pattern of x after rounding.
func F16Bits(x float64) uint16 {
	r := fp16Format.round(x)
	var sign uint16
	if math.Signbit(r) {
		sign = 0x8000
	}
	a := math.Abs(r)
	switch {
	case math.IsNaN(r):
		return sign | 0x7e00
	case math.IsInf(r, 0):
		return sign | 0x7c00
	case a == 0:
		return sign
	}
	_, exp := math.Frexp(a)
	e := exp - 1
	if e < -14 { // subnormal: a = m·2^-24
		return sign | uint16(math.Ldexp(a, 24))
	}
	mant := uint16(math.Ldexp(a, -e)*1024 - 1024)
	return sign | uint16(e+15)<<10 | mant
}

// F16FromBits decodes an IEEE half bit pattern.
func F16FromBits(b uint16) float64 {
	sign := 1.0
	if b&0x8000 != 0 {
		sign = -1
	}
	e, m := int(b>>10&0x1f), float64(b&0x3ff)
	switch e {
	case 0:
		return sign * math.Ldexp(m, -24)
	case 0x1f:
		if m == 0 {
			return sign * math.Inf(1)
		}
		return math.NaN()
	}
	return sign * math.Ldexp(1+m/1024, e-15)
}

// PutValue writes x rounded to d into b (len ≥ d.Size()), little-endian.
func (d DType) PutValue(b []byte, x float64) {
	le := binary.LittleEndian
	switch d {
	case F64:
		le.PutUint64(b, math.Float64bits(x))
	case F32:
		le.PutUint32(b, math.Float32bits(float32(x)))
	case BF16:
		le.PutUint16(b, BF16Bits(x))
	case F16:
		le.PutUint16(b, F16Bits(x))
	case I64:
		le.PutUint64(b, uint64(int64(d.Round(x))))
	case I32:
		le.PutUint32(b, uint32(int32(d.Round(x))))
	default:
		panic(fmt.Sprintf("tensor: PutValue with invalid dtype %v", d))
	}
}

// Value decodes one little-endian element of dtype d from b.
func (d DType) Value(b []byte) float64 {
	le := binary.LittleEndian
	switch d {
	case F64:
		return math.Float64frombits(le.Uint64(b))
	case F32:
		return float64(math.Float32frombits(le.Uint32(b)))
	case BF16:
		return BF16FromBits(le.Uint16(b))
	case F16:
		return F16FromBits(le.Uint16(b))
	case I64:
		return float64(int64(le.Uint64(b)))
	case I32:
		return float64(int32(le.Uint32(b)))
	}
	panic(fmt.Sprintf("tensor: Value with invalid dtype %v", d))
}

// Encode returns the canonical little-endian bytes of data in dtype d.
func Encode(d DType, data []float64) []byte {
	sz := d.Size()
	out := make([]byte, len(data)*sz)
	for i, v := range data {
		d.PutValue(out[i*sz:], v)
	}
	return out
}

// Decode converts canonical bytes of dtype d into float64 values (appending to dst).
func Decode(d DType, b []byte, dst []float64) []float64 {
	n := len(b) / d.Size()
	dst = slices.Grow(dst, n)
	DecodeInto(d, b, dst[len(dst):len(dst)+n])
	return dst[:len(dst)+n]
}

// DecodeInto decodes len(dst) values of dtype d from the canonical bytes b, one loop per dtype
// (no per-element dispatch), so a bf16 element costs what an fp32 one does.
func DecodeInto(d DType, b []byte, dst []float64) {
	le := binary.LittleEndian
	switch d {
	case F64:
		b = b[:8*len(dst)]
		for i := range dst {
			dst[i] = math.Float64frombits(le.Uint64(b[8*i:]))
		}
	case F32:
		b = b[:4*len(dst)]
		for i := range dst {
			dst[i] = float64(math.Float32frombits(le.Uint32(b[4*i:])))
		}
	case BF16:
		b = b[:2*len(dst)]
		for i := range dst {
			dst[i] = float64(math.Float32frombits(uint32(le.Uint16(b[2*i:])) << 16))
		}
	default:
		sz := d.Size()
		b = b[:sz*len(dst)]
		for i := range dst {
			dst[i] = d.Value(b[i*sz:])
		}
	}
}

// MD5 is the hex MD5 of the canonical bytes of t in dtype d: the hash traces and reports print.
func MD5(d DType, t *Dense) string { return MD5Bytes(Encode(d, t.Data)) }

// MD5Bytes is the hex MD5 of raw bytes.
func MD5Bytes(b []byte) string {
	s := md5.Sum(b)
	return hex.EncodeToString(s[:])
}
