package trace

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"github.com/spcheck/spcheck/internal/scenario"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/tensor"
)

// fpTensor is a global tensor with a NaN and a -0, values that exercise every field.
func fpTensor(shape ...int) *tensor.Dense {
	t := tensor.NewRNG(3, "fp").NormalTensor(1, shape...)
	t.Data[5] = math.NaN()
	t.Data[7] = math.Copysign(0, -1)
	return t
}

// TestFingerprintShardsCombine: the fingerprints ranks compute of their shards alone combine
// into the fingerprint of the whole tensor — the same hash, non-finite count and sample (the
// same elements, picked without coordination), sums and sketches equal up to summation order —
// for every way of cutting the tensor the placement grammar has (a dim other than 0, nested
// splits, padded blocks, segments).
func TestFingerprintShardsCombine(t *testing.T) {
	cases := []struct {
		reason string
		mesh   Mesh
		place  string
		shape  []int
	}{
		{"a column shard: each rank's elements are strided in the global order", Mesh{Axes: []string{"tp"}, Shape: []int{2}}, "tp=shard(1)", []int{12, 80}},
		{"nested splits of one dim", Mesh{Axes: []string{"dp", "tp"}, Shape: []int{2, 2}}, "dp=shard(0),tp=shard(0)", []int{18, 60}},
		{"padded blocks: padding rows are no element", Mesh{Axes: []string{"tp"}, Shape: []int{3}}, "tp=shard(0,block=7)", []int{20, 50}},
		{"segments: a rank's rows are not one run", Mesh{Axes: []string{"tp"}, Shape: []int{2}}, "tp=shard(0,segments=6:10)", []int{16, 66}},
		{"replicated on one axis, sharded on another", Mesh{Axes: []string{"dp", "tp"}, Shape: []int{2, 2}}, "tp=shard(2)", []int{2, 14, 40}},
	}
	for _, tc := range scenario.Cases(t, cases) {
		full := fpTensor(tc.shape...)
		raw := tensor.Encode(tensor.BF16, full.Data)
		whole := ComputeFingerprint("act/x", tensor.BF16, raw, tc.shape, tc.shape, oneRun(tc.shape), 16)
		p, err := ParsePlacement(tc.place)
		must(t, err)
		world := tensor.Numel(tc.mesh.Shape)
		seen := map[string]bool{}
		var parts []*Fingerprint
		for r := 0; r < world; r++ {
			m := Meta{Rank: r, World: world, Mesh: tc.mesh}
			coord := PieceCoord(&m, &TensorMeta{})
			spans, padded, err := PieceSpans(p, tc.mesh, coord, tc.shape)
			must(t, err)
			local := localPiece(full, spans, padded)
			key := strings.Join(strings.Fields(strings.Trim(strings.ReplaceAll(strings.ReplaceAll(fmtSpans(spans), "[", " "), "]", " "), " ")), ",")
			if seen[key] { // a replica: the verifier takes one copy
				continue
			}
			seen[key] = true
			w := NewWriter(m)
			w.SetDump(&Dump{Fingerprint: true, Samples: 16})
			must(t, w.Add("x", TensorMeta{Name: "act/x", Kind: Activation, Place: tc.place, Shape: tc.shape}, tensor.BF16, local))
			b, err := w.Bytes()
			must(t, err)
			f, err := readBytes(b, "rank")
			must(t, err)
			e := f.Entries[0]
			if !e.IsFingerprint() || !slices.Equal(e.Shape, local.Shape) || e.DType != tensor.BF16 || f.Meta.Version != FingerprintVersion {
				t.Fatalf("%s: entry %+v is not the fingerprint of a %v BF16 piece", tc.reason, e, local.Shape)
			}
			fp, err := f.Fingerprint(e)
			must(t, err)
			parts = append(parts, fp)
		}
		got := CombineFingerprints(parts)
		if got.Hash != whole.Hash || got.NonFinite != whole.NonFinite || !slices.Equal(got.Index, whole.Index) || !sameFloats(got.Value, whole.Value, 0) {
			t.Fatalf("%s: combined %s nonfinite %d samples %v, whole %s %d %v", tc.reason, got.HashString(), got.NonFinite, got.Index, whole.HashString(), whole.NonFinite, whole.Index)
		}
		if len(whole.Index) < 6 || len(whole.Index) > 40 {
			t.Fatalf("%s: %d samples of %d elements, aimed at 16", tc.reason, len(whole.Index), full.Numel())
		}
		if !sameFloats([]float64{got.Sum, got.SumSq, got.SumAbs, got.MaxAbs}, []float64{whole.Sum, whole.SumSq, whole.SumAbs, whole.MaxAbs}, 1e-12) {
			t.Fatalf("%s: stats differ", tc.reason)
		}
		for d := range got.Sketch {
			if !sameFloats(got.Sketch[d], whole.Sketch[d], 1e-12) {
				t.Fatalf("%s: sketch of dim %d differs:\n%v\n%v", tc.reason, d, got.Sketch[d], whole.Sketch[d])
			}
		}
	}
}

func fmtSpans(s [][]Span) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func oneRun(shape []int) [][]Span {
	out := make([][]Span, len(shape))
	for d, n := range shape {
		out[d] = []Span{{0, n}}
	}
	return out
}

// localPiece cuts the piece spans describes out of full, padded with 9s where a dim is padded.
func localPiece(full *tensor.Dense, spans [][]Span, padded []int) *tensor.Dense {
	t := full
	for d, runs := range spans {
		var parts []*tensor.Dense
		n := 0
		for _, s := range runs {
			parts = append(parts, t.Narrow(d, s.Lo, s.Len()))
			n += s.Len()
		}
		t = tensor.Concat(d, parts...)
		if padded[d] > n {
			t = t.Pad(d, 0, padded[d]-n, 9)
		}
	}
	return t
}

func sameFloats(a, b []float64, rel float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.IsNaN(a[i]) && math.IsNaN(b[i]) {
			continue
		}
		if math.Abs(a[i]-b[i]) > rel*(math.Abs(b[i])+1) {
			return false
		}
	}
	return true
}

// TestFingerprintDumpSelects: a Dump fingerprints every tensor but those it names, and keeps in
// full what cannot be fingerprinted per rank (a partial sum) and what is no larger than its
// fingerprint (a loss, a small tensor); a fingerprint is no data.
func TestFingerprintDumpSelects(t *testing.T) {
	w := NewWriter(sampleMeta(0))
	w.SetDump(&Dump{Fingerprint: true, Names: []string{"act/named"}, Samples: 16})
	x := fpTensor(32, 8)
	must(t, w.Add("w", TensorMeta{Name: "param/w", Kind: Param, Order: 1, Place: "tp=shard(0)", Shape: []int{64, 8}}, tensor.BF16, x))
	must(t, w.Add("p", TensorMeta{Name: "act/p", Kind: Activation, Order: 2, Place: "tp=partial"}, tensor.F32, x))
	must(t, w.Add("n", TensorMeta{Name: "act/named", Kind: Activation, Order: 3}, tensor.F32, x))
	must(t, w.Add("small", TensorMeta{Name: "act/small", Kind: Activation, Order: 4}, tensor.F32, x.Narrow(0, 0, 4)))
	must(t, w.Add("loss", TensorMeta{Name: "loss/main", Kind: Loss, Order: 5}, tensor.F64, tensor.Scalar(0.5)))
	f, err := w.File("mem")
	must(t, err)
	for _, c := range scenario.Cases(t, []struct {
		reason, key string
		fp          bool
	}{{"a large tensor is fingerprinted", "w", true}, {"a partial sum is kept in full", "p", false}, {"a tensor the dump names is kept in full", "n", false}, {"a tensor no larger than its fingerprint", "small", false}, {"a loss", "loss", false}}) {
		e := f.Entry(c.key)
		if e.IsFingerprint() != c.fp {
			t.Fatalf("%s: fingerprint %v, want %v", c.key, e.IsFingerprint(), c.fp)
		}
		if _, err := f.Tensor(e); (err != nil) != c.fp {
			t.Fatalf("%s: reading its data: %v", c.key, err)
		}
	}
	if _, err := f.Tensor(f.Entry("w")); err == nil || !strings.Contains(err.Error(), "field fingerprint") {
		t.Fatalf("reading a fingerprint as data: %v", err)
	}
}

// TestFingerprintBadInput: a damaged fingerprint is an error naming the file, the tensor and the
// field, like any other damage.
func TestFingerprintBadInput(t *testing.T) {
	good := func() *Writer {
		return fingerprintWriter(t)
	}
	cases := []struct {
		reason string
		edit   func(fm map[string]any, meta map[string]any)
		record func(rec []float64)
		want   string
	}{
		{"a hash that is not hex", func(fm, _ map[string]any) { fm["hash"] = "xyz" }, nil, `tensor "w": field fingerprint.hash`},
		{"a dtype nobody knows", func(fm, _ map[string]any) { fm["dtype"] = "F8" }, nil, `tensor "w": field fingerprint.dtype`},
		{"more samples than the record holds", func(fm, _ map[string]any) { fm["samples"] = 50 }, nil, `tensor "w": field fingerprint: the stored record is F64 [56], but 50 samples`},
		{"sketch blocks for another rank", func(fm, _ map[string]any) { fm["blocks"] = []int{4} }, nil, `tensor "w": field fingerprint.blocks`},
		{"a local shape the placement cannot make", func(fm, _ map[string]any) { fm["shape"] = []int{17, 8} }, nil, `tensor "w": field shape`},
		{"a fingerprint of a partial sum", func(_, tm map[string]any) { tm["place"] = "tp=partial" }, nil, `tensor "w": field fingerprint: the placement "tp=partial"`},
		{"no global shape", func(_, tm map[string]any) { delete(tm, "shape") }, nil, `tensor "w": field shape: a fingerprinted tensor needs its global shape`},
		{"a version-1 file", func(_, tm map[string]any) { tm["__version"] = 1 }, nil, `field fingerprint: a version-1 file`},
		{"a sample index outside the tensor", nil, func(rec []float64) { rec[statFields] = 256 }, `tensor "w": field fingerprint.samples: sample 0: index 256`},
		{"sample indices out of order", nil, func(rec []float64) { rec[statFields], rec[statFields+1] = rec[statFields+1], rec[statFields] }, `tensor "w": field fingerprint.samples: sample 1`},
		{"a negative norm", nil, func(rec []float64) { rec[1] = -1 }, `tensor "w": field fingerprint: record`},
	}
	for _, tc := range scenario.Cases(t, cases) {
		b, err := good().Bytes()
		must(t, err)
		b = editFingerprint(t, b, tc.edit, tc.record)
		f, err := readBytes(b, "rank-00001.safetensors")
		if err == nil {
			_, err = f.Fingerprint(f.Entry("w"))
		}
		if err == nil || !strings.Contains(err.Error(), "rank-00001.safetensors") || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("%s: got %v, want an error with %q", tc.reason, err, tc.want)
		}
		if _, ok := err.(*Error); !ok {
			t.Fatalf("%s: error of type %T", tc.reason, err)
		}
	}
}

// editFingerprint rewrites the metadata of tensor "w" and its record in a rendered file.
func editFingerprint(t *testing.T, b []byte, edit func(fm, tm map[string]any), record func([]float64)) []byte {
	n := binary.LittleEndian.Uint64(b)
	var hdr map[string]any
	must(t, json.Unmarshal(b[8:8+n], &hdr))
	data := b[8+n:]
	md := hdr["__metadata__"].(map[string]any)
	var meta map[string]any
	must(t, json.Unmarshal([]byte(md[MetadataKey].(string)), &meta))
	tm := meta["tensors"].(map[string]any)["w"].(map[string]any)
	if edit != nil {
		edit(tm["fingerprint"].(map[string]any), tm)
		if v, ok := tm["__version"]; ok {
			meta["version"] = v
			delete(tm, "__version")
		}
	}
	if record != nil {
		ent := hdr["w"].(map[string]any)
		off := ent["data_offsets"].([]any)
		lo, hi := int(off[0].(float64)), int(off[1].(float64))
		rec := tensor.Decode(tensor.F64, data[lo:hi], nil)
		record(rec)
		copy(data[lo:hi], tensor.Encode(tensor.F64, rec))
	}
	doc, _ := json.Marshal(meta)
	md[MetadataKey] = string(doc)
	h, _ := json.Marshal(hdr)
	for len(h)%8 != 0 {
		h = append(h, ' ')
	}
	var out bytes.Buffer
	binary.Write(&out, binary.LittleEndian, uint64(len(h)))
	out.Write(h)
	out.Write(data)
	return out.Bytes()
}

// goldenFingerprint is the fingerprint of act/z = float32(i/7) over [64, 40] with a NaN at
// [3, 5], 64 samples: python/tests/test_fingerprint.py checks its numpy implementation against
// the same numbers, so the Go and Python producers cannot drift apart.
const (
	goldenHash  = "fc42eccdac623f6e3549499258a24c7b"
	goldenFirst = "[39 73 90 95 116]"
)

// TestFingerprintGolden: the fingerprint definition is fixed (producers in other languages and
// traces on disk rely on it).
func TestFingerprintGolden(t *testing.T) {
	x := make([]float64, 64*40)
	for i := range x {
		x[i] = float64(float32(i) / 7)
	}
	x[3*40+5] = math.NaN()
	raw := tensor.Encode(tensor.F32, x)
	fp := ComputeFingerprint("act/z", tensor.F32, raw, []int{64, 40}, []int{64, 40}, oneRun([]int{64, 40}), 64)
	if got := fp.HashString(); got != goldenHash || fmt.Sprint(fp.Index[:5]) != goldenFirst || fp.NonFinite != 1 {
		t.Fatalf("hash %s, first samples %v, nonfinite %d; want %s %s 1", got, fp.Index[:5], fp.NonFinite, goldenHash, goldenFirst)
	}
}
