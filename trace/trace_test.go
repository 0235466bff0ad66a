package trace

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/tensor"
)

// sampleMeta is a two-rank tp mesh.
func sampleMeta(rank int) Meta {
	return Meta{Rank: rank, World: 2, Mesh: Mesh{Axes: []string{"tp"}, Shape: []int{2}},
		Coord: map[string]int{"tp": rank}, Producer: "test", Plan: "tp=2"}
}

func sampleFile(t testing.TB, rank int) []byte {
	t.Helper()
	b, err := sampleWriter(t, rank).Bytes()
	must(t, err)
	return b
}

func sampleWriter(t testing.TB, rank int) *Writer {
	t.Helper()
	w := NewWriter(sampleMeta(rank))
	x := tensor.FromData([]int{2, 3}, []float64{1, 2, 3, 4, 5, 6})
	must(t, w.Add("w", TensorMeta{Name: "param/w", Kind: Param, Order: 1, Place: "tp=shard(0)", Shape: []int{4, 3}}, tensor.BF16, x))
	must(t, w.Add("loss", TensorMeta{Name: "loss/main", Kind: Loss, Order: 2}, tensor.F64, tensor.Scalar(0.5)))
	return w
}

// TestWriterFileEqualsReadBack: the in-memory file is what reading the rendered bytes gives.
func TestWriterFileEqualsReadBack(t *testing.T) {
	w := sampleWriter(t, 1)
	mem, err := w.File("mem")
	must(t, err)
	b, err := w.Bytes()
	must(t, err)
	disk, err := readBytes(b, "disk")
	must(t, err)
	if !reflect.DeepEqual(mem.Meta, disk.Meta) || len(mem.Entries) != len(disk.Entries) {
		t.Fatalf("metadata differs:\n%+v\n%+v", mem.Meta, disk.Meta)
	}
	for i, e := range mem.Entries {
		d := disk.Entries[i]
		rm, err1 := mem.Raw(e)
		rd, err2 := disk.Raw(d)
		must(t, errors.Join(err1, err2))
		if e.Key != d.Key || !reflect.DeepEqual(e.Meta, d.Meta) || !reflect.DeepEqual(e.Placement, d.Placement) || !bytes.Equal(rm, rd) {
			t.Fatalf("entry %d differs: %+v vs %+v", i, e, d)
		}
	}
	bad := NewWriter(Meta{Rank: 3, World: 2})
	if _, err := bad.File("bad"); err == nil || !strings.Contains(err.Error(), "field rank") {
		t.Fatalf("in-memory file skipped validation: %v", err)
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func readBytes(b []byte, name string) (*File, error) {
	return Read(bytes.NewReader(b), int64(len(b)), name)
}

func TestWriteReadRoundTrip(t *testing.T) {
	b := sampleFile(t, 1)
	f, err := readBytes(b, "rank1")
	must(t, err)
	if f.Meta.Rank != 1 || f.Meta.Mesh.Size("tp") != 2 || len(f.Entries) != 2 {
		t.Fatalf("metadata lost: %+v", f.Meta)
	}
	if f.Entries[0].Key != "w" || f.Entries[1].Key != "loss" {
		t.Fatalf("entries not in execution order: %v, %v", f.Entries[0].Key, f.Entries[1].Key)
	}
	w, err := f.Tensor(f.Entry("w"))
	must(t, err)
	if w.At(1, 2) != 6 || f.Entry("w").Placement.On("tp").Kind != Shard {
		t.Fatalf("tensor or placement wrong: %v %v", w, f.Entry("w").Placement)
	}
	if b2 := sampleFile(t, 1); !bytes.Equal(b, b2) {
		t.Fatal("writer is not deterministic")
	}
	if len(b)%8 != 0 && binary.LittleEndian.Uint64(b)%8 != 0 {
		t.Fatal("header not padded to 8 bytes")
	}
}

// corrupt returns a copy of a valid file with its header edited by fn.
func corrupt(t *testing.T, fn func(h map[string]any)) []byte {
	b := sampleFile(t, 0)
	n := binary.LittleEndian.Uint64(b)
	var h map[string]any
	must(t, json.Unmarshal(b[8:8+n], &h))
	fn(h)
	hdr, _ := json.Marshal(h)
	out := binary.LittleEndian.AppendUint64(nil, uint64(len(hdr)))
	return append(append(out, hdr...), b[8+n:]...)
}

func editMeta(fn func(m map[string]any)) func(h map[string]any) {
	return func(h map[string]any) {
		md := h["__metadata__"].(map[string]any)
		var m map[string]any
		json.Unmarshal([]byte(md[MetadataKey].(string)), &m)
		fn(m)
		s, _ := json.Marshal(m)
		md[MetadataKey] = string(s)
	}
}

func tensorMeta(m map[string]any, key string) map[string]any {
	return m["tensors"].(map[string]any)[key].(map[string]any)
}

func TestBadFilesNameTheField(t *testing.T) {
	valid := sampleFile(t, 0)
	hugeLen := append(binary.LittleEndian.AppendUint64(nil, 1<<40), valid[8:]...)
	cases := []struct {
		reason string
		data   []byte
		want   string // substring of the error: the field, tensor or file at fault
	}{
		{"truncated before the length", valid[:5], "header length"},
		{"header longer than the file", hugeLen, "header length"},
		{"truncated data", valid[:len(valid)-4], "data_offsets"},
		{"unknown dtype", corrupt(t, func(h map[string]any) { h["w"].(map[string]any)["dtype"] = "F8_E4M3" }), `tensor "w": field dtype`},
		{"shape/size mismatch", corrupt(t, func(h map[string]any) { h["w"].(map[string]any)["shape"] = []int{3, 3} }), `tensor "w": field data_offsets`},
		{"overlapping tensors", corrupt(t, func(h map[string]any) { h["loss"].(map[string]any)["data_offsets"] = []int{4, 12} }), "overlaps"},
		{"offset out of range", corrupt(t, func(h map[string]any) { h["loss"].(map[string]any)["data_offsets"] = []int{1000, 1008} }), "outside"},
		{"not an spcheck trace", corrupt(t, func(h map[string]any) { delete(h, "__metadata__") }), "__metadata__"},
		{"malformed placement", corrupt(t, editMeta(func(m map[string]any) { tensorMeta(m, "w")["place"] = "tp=shard(x)" })), `tensor "w": field place`},
		{"placement on a missing axis", corrupt(t, editMeta(func(m map[string]any) { tensorMeta(m, "w")["place"] = "pp=shard(0)" })), "lacks"},
		{"shard dim past the rank", corrupt(t, editMeta(func(m map[string]any) { tensorMeta(m, "w")["place"] = "tp=shard(2)" })), "field place"},
		{"local shape too big for global", corrupt(t, editMeta(func(m map[string]any) { tensorMeta(m, "w")["shape"] = []int{2, 3} })), "field shape"},
		{"unknown kind", corrupt(t, editMeta(func(m map[string]any) { tensorMeta(m, "w")["kind"] = "weights" })), "field kind"},
		{"rank outside world", corrupt(t, editMeta(func(m map[string]any) { m["rank"] = 5 })), "field rank"},
		{"wrong version", corrupt(t, editMeta(func(m map[string]any) { m["version"] = 9 })), "field version"},
		{"metadata for an absent tensor", corrupt(t, editMeta(func(m map[string]any) {
			m["tensors"].(map[string]any)["ghost"] = map[string]any{"name": "x", "kind": "param"}
		})), `tensor "ghost"`},
	}
	for _, c := range scenario.Cases(t, cases) {
		_, err := readBytes(c.data, "rank-00000.safetensors")
		if err == nil {
			t.Errorf("%s: no error", c.reason)
			continue
		}
		var te *Error
		if !errors.As(err, &te) || te.File != "rank-00000.safetensors" {
			t.Errorf("%s: error %q does not name the file", c.reason, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %q does not mention %q", c.reason, err, c.want)
		}
	}
}

func TestOpenDirChecksRanks(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, FileName(0)), sampleFile(t, 0), 0o644))
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), "no file for rank(s) [1]") {
		t.Fatalf("missing rank not reported: %v", err)
	}
	must(t, os.WriteFile(filepath.Join(dir, "copy.safetensors"), sampleFile(t, 0), 0o644))
	if _, err := OpenDir(dir); err == nil || !strings.Contains(err.Error(), "also claimed") {
		t.Fatalf("duplicate rank not reported: %v", err)
	}
	os.Remove(filepath.Join(dir, "copy.safetensors"))
	must(t, os.WriteFile(filepath.Join(dir, FileName(1)), sampleFile(t, 1), 0o644))
	tr, err := OpenDir(dir)
	must(t, err)
	defer tr.Close()
	if len(tr.Files) != 2 || tr.Files[1].Meta.Rank != 1 {
		t.Fatal("files not in rank order")
	}
	if _, err := OpenDir(filepath.Join(dir, "nope")); err == nil {
		t.Fatal("missing directory not reported")
	}
}

func TestPlacementGrammarRoundTrip(t *testing.T) {
	for _, s := range []string{"", "tp=shard(0)", "dp=shard(0),tp=shard(1,block=6)", "tp=partial,pp=stage", "dp=replicate",
		"tp=partial(avg)", "tp=partial(max)", "dp=partial(min)", "tp=partial(avg),dp=partial", "dp=shard(0,segments=2),tp=shard(0)", "tp=shard(0,segments=64:16:16)"} {
		p, err := ParsePlacement(s)
		must(t, err)
		if p.String() != s {
			t.Errorf("%q printed back as %q", s, p.String())
		}
	}
	if p, _ := ParsePlacement("tp=partial(sum)"); p.String() != "tp=partial" {
		t.Errorf("partial(sum) printed back as %q, want the plain partial it means", p)
	}
	for _, s := range []string{"tp", "tp=shard()", "tp=shard(0,block=0)", "tp=partial,tp=stage", "TP=stage", "tp=sharded(0)",
		"tp=partial(mean)", "tp=partial()", "tp=shard(0,segments=0)", "tp=shard(0,segments=2:0)", "tp=shard(0,segments=)",
		"tp=shard(0,segments=2,block=3)", "tp=shard(0,stride=2)", "tp=partial(max),dp=partial", "dp=partial(avg),tp=partial(min)"} {
		if _, err := ParsePlacement(s); err == nil {
			t.Errorf("%q parsed without error", s)
		}
	}
}

// TestSpans: the runs of the global dim each coordinate holds, for plain, nested, strided and
// segmented shards.
func TestSpans(t *testing.T) {
	whole := func(n int) []Span { return []Span{{0, n}} }
	cases := []struct {
		place  string
		n      int
		coords []int // per item of the placement, on axes of size 2
		want   []Span
		reason string
	}{
		{"tp=shard(0)", 8, []int{1}, []Span{{4, 8}}, "a plain shard is one run"},
		{"tp=shard(0)", 7, []int{1}, []Span{{4, 7}}, "uneven: ceil-sized chunks, the last one short (torch.chunk)"},
		{"dp=shard(0),tp=shard(0)", 8, []int{1, 0}, []Span{{4, 6}}, "nested: dp halves, then tp halves inside"},
		{"dp=shard(0,segments=2),tp=shard(0)", 8, []int{0, 1}, []Span{{4, 6}},
			"FSDP2+TP (_StridedShard(0, split_factor=2) on dp, Shard(0) on tp): tp1 holds [4,8), dp0 its first half"},
		{"dp=shard(0,segments=2),tp=shard(0)", 8, []int{1, 0}, []Span{{2, 4}}, "the same, dp1 tp0"},
		{"tp=shard(0,segments=2)", 8, []int{1}, []Span{{2, 4}, {6, 8}}, "packed gate_up: tp1 holds the second half of gate and of up"},
		{"tp=shard(0,segments=8:4:4)", 16, []int{0}, []Span{{0, 4}, {8, 10}, {12, 14}}, "fused QKV with GQA: q, k, v rows of tp0"},
		{"tp=shard(0,segments=8:4:4)", 16, []int{1}, []Span{{4, 8}, {10, 12}, {14, 16}}, "fused QKV: tp1"},
		{"tp=shard(0,segments=1)", 4, []int{1}, []Span{{2, 4}}, "one segment is a plain shard"},
		{"tp=shard(0,segments=2)", 7, []int{0}, []Span{{0, 2}, {4, 6}}, "uneven: segments of 4 and 3 rows (torch.chunk), as _StridedShard._split_tensor gives [0,1,4,5]"},
		{"tp=shard(0,segments=2)", 7, []int{1}, []Span{{2, 4}, {6, 7}}, "uneven, the other rank: [2,3,6]"},
	}
	for _, c := range scenario.Cases(t, cases) {
		p, err := ParsePlacement(c.place)
		must(t, err)
		region := whole(c.n)
		for j, ap := range p {
			region, _, err = ap.Spans(region, 2, c.coords[j])
			must(t, err)
		}
		if !reflect.DeepEqual(region, c.want) {
			t.Errorf("%s: %s at %v holds %v, want %v", c.reason, c.place, c.coords, region, c.want)
		}
	}
	for _, c := range scenario.Cases(t, []struct {
		place  string
		n      int
		reason string
	}{
		{"tp=shard(0,segments=4:4)", 9, "the segments must add up to the dim"},
	}) {
		p, err := ParsePlacement(c.place)
		must(t, err)
		if _, _, err := p[0].Spans(whole(c.n), 2, 0); err == nil {
			t.Errorf("%s: %s of %d rows gave no error", c.reason, c.place, c.n)
		}
	}
}

func TestShardRangeWithBlock(t *testing.T) {
	// Megatron-style vocab padding: vocab 10 over tp 2 padded to 12 → blocks of 6.
	a := AxisPlace{Axis: "tp", Kind: Shard, Dim: 0, Block: 6}
	if lo, hi, pad := a.Range(10, 2, 1); lo != 6 || hi != 10 || pad != 6 {
		t.Fatalf("Range = %d,%d,%d", lo, hi, pad)
	}
}

// TestEmptyTensorsOverlapNothing: a zero-length tensor at the same offset as another is valid
// whatever order the header's map yields (this once failed one run in two).
func TestEmptyTensorsOverlapNothing(t *testing.T) {
	for i := 0; i < 20; i++ {
		w := NewWriter(Meta{World: 1})
		must(t, w.Add("a", TensorMeta{Name: "act/a", Kind: Activation}, tensor.F64, tensor.New(0, 3)))
		must(t, w.Add("b", TensorMeta{Name: "act/b", Kind: Activation}, tensor.F64, tensor.New(2)))
		must(t, w.Add("c", TensorMeta{Name: "act/c", Kind: Activation}, tensor.F64, tensor.New(0)))
		b, err := w.Bytes()
		must(t, err)
		if _, err := readBytes(b, "empty"); err != nil {
			t.Fatal(err)
		}
		if _, err := w.File("empty"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSegmentsReadAcrossParts(t *testing.T) {
	var s segments
	for _, part := range []string{"ab", "", "cde", "f"} {
		s.add([]byte(part))
	}
	for _, c := range scenario.Cases(t, []struct {
		off    int64
		n      int
		want   string
		eof    bool
		reason string
	}{
		{0, 6, "abcdef", false, "the whole stream across every part"},
		{1, 3, "bcd", false, "a read spanning an empty part"},
		{2, 2, "cd", false, "a read inside one part"},
		{5, 1, "f", false, "the last byte"},
		{4, 4, "ef", true, "a read past the end returns what there is and EOF"},
		{6, 1, "", true, "a read at the end is EOF"},
	}) {
		buf := make([]byte, c.n)
		n, err := s.ReadAt(buf, c.off)
		if string(buf[:n]) != c.want || (err != nil) != c.eof {
			t.Errorf("ReadAt(%d, %d) = %q, %v; want %q (eof %v)", c.off, c.n, buf[:n], err, c.want, c.eof)
		}
	}
}

// TestAddRefAndStreaming: a writer holding references (AddRef) renders, streams (WriteDir) and
// opens (File) exactly the bytes of one that encoded at Add, including a tensor larger than
// the streaming chunk and an empty one, in every dtype.
func TestAddRefAndStreaming(t *testing.T) {
	big := tensor.NewRNG(1, "big").NormalTensor(1, 3, 40000) // 120000 elements: two chunks
	for _, d := range []tensor.DType{tensor.F64, tensor.F32, tensor.BF16, tensor.F16} {
		eager, lazy := NewWriter(sampleMeta(0)), NewWriter(sampleMeta(0))
		for _, add := range []func(string, TensorMeta, tensor.DType, *tensor.Dense) error{eager.Add, lazy.AddRef} {
			must(t, add("big", TensorMeta{Name: "act/big", Kind: Activation, Order: 1}, d, big))
			must(t, add("empty", TensorMeta{Name: "act/empty", Kind: Activation, Order: 2}, d, tensor.New(0, 3)))
			must(t, add("loss", TensorMeta{Name: "loss/main", Kind: Loss, Order: 3}, d, tensor.Scalar(0.25)))
		}
		want, err := eager.Bytes()
		must(t, err)
		got, err := lazy.Bytes()
		must(t, err)
		if !bytes.Equal(got, want) {
			t.Fatalf("%v: AddRef renders other bytes than Add", d)
		}
		path, err := lazy.WriteDir(t.TempDir())
		must(t, err)
		disk, err := os.ReadFile(path)
		must(t, err)
		if !bytes.Equal(disk, want) {
			t.Fatalf("%v: the streamed file differs from Bytes", d)
		}
		f, err := lazy.File("mem")
		must(t, err)
		raw, err := f.Raw(f.Entries[0])
		must(t, err)
		if !bytes.Equal(raw, tensor.Encode(d, big.Data)) {
			t.Fatalf("%v: the in-memory file of AddRef holds other bytes", d)
		}
	}
}
