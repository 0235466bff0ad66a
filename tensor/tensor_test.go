package tensor

import (
	"math"
	"math/rand"
	"slices"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
)

func seq(shape ...int) *Dense {
	t := New(shape...)
	for i := range t.Data {
		t.Data[i] = float64(i)
	}
	return t
}

func TestNarrowConcatSplitRoundTrip(t *testing.T) {
	x := seq(2, 5, 3)
	for dim := 0; dim < 3; dim++ {
		parts := x.Chunk(dim, 2)
		back := Concat(dim, parts...)
		if !BitEqual(back, x) {
			t.Fatalf("dim %d: chunk+concat changed the tensor", dim)
		}
	}
	got := x.Narrow(1, 1, 2)
	if !slices.Equal(got.Shape, []int{2, 2, 3}) || got.At(1, 0, 2) != x.At(1, 1, 2) {
		t.Fatalf("Narrow wrong: %v", got)
	}
}

func TestShardRangeUneven(t *testing.T) {
	cases := []struct {
		reason        string
		n, parts, i   int
		wantLo, wantH int
	}{
		{"even split", 8, 2, 1, 4, 8},
		{"ceil shards, last shorter", 5, 2, 1, 3, 5},
		{"trailing empty shard", 2, 4, 3, 2, 2},
	}
	for _, c := range scenario.Cases(t, cases) {
		lo, hi := ShardRange(c.n, c.parts, c.i)
		if lo != c.wantLo || hi != c.wantH {
			t.Errorf("%s: ShardRange(%d,%d,%d) = [%d,%d), want [%d,%d)", c.reason, c.n, c.parts, c.i, lo, hi, c.wantLo, c.wantH)
		}
	}
}

func TestPad(t *testing.T) {
	x := seq(3, 2)
	p := x.Pad(0, 0, 1, 0)
	if !slices.Equal(p.Shape, []int{4, 2}) || p.At(3, 1) != 0 || p.At(2, 1) != 5 {
		t.Fatalf("Pad wrong: %v", p)
	}
}

func TestShapeMisusePanicsTyped(t *testing.T) {
	defer func() {
		if _, ok := recover().(*ShapeError); !ok {
			t.Fatal("want *ShapeError panic")
		}
	}()
	Concat(0, seq(2, 3), seq(2, 4))
}

// nearestBrute finds the nearest value of a format among all its finite bit patterns
// (ties to the even pattern); it is the specification Round is checked against.
func nearestBrute(x float64, decode func(uint16) float64) float64 {
	best, bestBits := math.Inf(1), uint16(0)
	bestErr := math.Inf(1)
	for b := 0; b < 1<<16; b++ {
		v := decode(uint16(b))
		if math.IsNaN(v) || math.IsInf(v, 0) || (v == 0 && math.Signbit(v) != math.Signbit(x)) {
			continue
		}
		e := math.Abs(v - x)
		if e < bestErr || (e == bestErr && b&1 == 0 && bestBits&1 == 1) {
			best, bestBits, bestErr = v, uint16(b), e
		}
	}
	return best
}

func TestRoundMatchesBruteForce(t *testing.T) {
	r := NewRNG(7, "round")
	xs := []float64{1 + 0x1p-8, 1 + 3*0x1p-8, 1.00390625, -2.5e-3, 1e-6, 3.14159, 65519, 1e-7, 6e-8, 0x1p-130}
	for i := 0; i < 200; i++ {
		xs = append(xs, r.Normal(uint64(i))*math.Pow(10, float64(i%9-4)))
	}
	for _, x := range xs {
		if got, want := BF16.Round(x), nearestBrute(x, BF16FromBits); got != want && !(math.Abs(x) > 1e38) {
			t.Errorf("bf16 round(%g) = %g, want %g", x, got, want)
		}
		if math.Abs(x) < 65504 {
			if got, want := F16.Round(x), nearestBrute(x, F16FromBits); got != want {
				t.Errorf("fp16 round(%g) = %g, want %g", x, got, want)
			}
		}
	}
}

func TestHalfBitsRoundTripAllPatterns(t *testing.T) {
	formats := scenario.Cases(t, []struct {
		name   string
		dec    func(uint16) float64
		enc    func(float64) uint16
		reason string
	}{
		{"bf16", BF16FromBits, BF16Bits, "every bf16 bit pattern decodes and encodes back"},
		{"fp16", F16FromBits, F16Bits, "every fp16 bit pattern decodes and encodes back"},
	})
	for b := 0; b < 1<<16; b++ {
		for _, f := range formats {
			v := f.dec(uint16(b))
			if math.IsNaN(v) {
				if !math.IsNaN(f.dec(f.enc(v))) {
					t.Fatalf("%s NaN pattern %#04x did not stay NaN", f.name, b)
				}
				continue
			}
			if got := f.enc(v); got != uint16(b) {
				t.Fatalf("%s: bits %#04x → %g → %#04x", f.name, b, v, got)
			}
		}
	}
}

func TestKnownHalfValues(t *testing.T) {
	cases := []struct {
		reason string
		x      float64
		f16    uint16
		bf16   uint16
	}{
		{"one", 1, 0x3c00, 0x3f80},
		{"one third rounds to nearest", 1.0 / 3, 0x3555, 0x3eab},
		{"fp16 max", 65504, 0x7bff, 0x4780},
		{"fp16 overflow at max+half ulp", 65520, 0x7c00, 0x4780},
		{"fp16 smallest subnormal", 0x1p-24, 0x0001, 0x3380},
		{"bf16 tie to even stays 1 (exact in fp16)", 1 + 0x1p-8, 0x3c04, 0x3f80},
		{"bf16 tie to even rounds up (exact in fp16)", 1 + 3*0x1p-8, 0x3c0c, 0x3f82},
		{"negative zero", math.Copysign(0, -1), 0x8000, 0x8000},
	}
	for _, c := range scenario.Cases(t, cases) {
		if got := F16Bits(c.x); got != c.f16 {
			t.Errorf("%s: F16Bits(%g) = %#04x, want %#04x", c.reason, c.x, got, c.f16)
		}
		if got := BF16Bits(c.x); got != c.bf16 {
			t.Errorf("%s: BF16Bits(%g) = %#04x, want %#04x", c.reason, c.x, got, c.bf16)
		}
	}
}

func TestEncodeDecodeAndMD5(t *testing.T) {
	x := FromData([]int{4}, []float64{1, -2, 0.5, 3})
	for _, d := range []DType{F64, F32, BF16, F16, I64, I32} {
		want := x.RoundAll(d).Data
		if got := Decode(d, Encode(d, x.Data), nil); !slices.Equal(got, want) {
			t.Errorf("%v: round trip %v, want %v", d, got, want)
		}
	}
	// python: hashlib.md5(struct.pack('<4f', 1, -2, .5, 3)).hexdigest()
	if got, want := MD5(F32, x), "c61888252347d1cd699ad4d015022392"; got != want {
		t.Fatalf("MD5 = %s, want %s", got, want)
	}
}

func TestRNGDependsOnlyOnSeedNameIndex(t *testing.T) {
	a, b := NewRNG(1, "w"), NewRNG(1, "w")
	if a.Normal(5) != b.Normal(5) {
		t.Fatal("same key gives different values")
	}
	if NewRNG(2, "w").Normal(5) == a.Normal(5) || NewRNG(1, "v").Normal(5) == a.Normal(5) {
		t.Fatal("seed or name does not change values")
	}
	full := a.NormalTensor(1, 4, 3)
	if full.At(2, 1) != a.Normal(7) {
		t.Fatal("element value is not a function of its flat index")
	}
	if got := SplitMix64(0); got != 0xe220a8397b1dcdaf {
		t.Fatalf("SplitMix64(0) = %#x, want the reference 0xe220a8397b1dcdaf", got)
	}
}

// TestDecodeIntoMatchesValue: the per-dtype decode loops give, for every bit pattern drawn,
// the value DType.Value gives element by element (NaN payloads compared as NaN).
func TestDecodeIntoMatchesValue(t *testing.T) {
	r := rand.New(rand.NewSource(1))
	raw := make([]byte, 8*1000)
	r.Read(raw)
	for _, d := range []DType{F64, F32, BF16, F16, I64, I32} {
		n := len(raw) / d.Size()
		got := Decode(d, raw, []float64{42})
		if len(got) != n+1 || got[0] != 42 {
			t.Fatalf("%v: Decode appended %d values after the kept prefix %v, want %d", d, len(got)-1, got[:1], n)
		}
		for i, v := range got[1:] {
			want := d.Value(raw[i*d.Size():])
			if v != want && !(math.IsNaN(v) && math.IsNaN(want)) {
				t.Fatalf("%v element %d: decoded %v, Value gives %v", d, i, v, want)
			}
		}
	}
}
