package trace

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"

	"github.com/spcheck/spcheck/tensor"
)

// maxHeader bounds the JSON header (safetensors' own reader uses 100 MB).
const maxHeader = 100 << 20

// Entry is one tensor of a file: its key, storage and metadata.
type Entry struct {
	Key       string
	DType     tensor.DType
	Shape     []int // local shape as stored
	Begin     int64 // byte offsets relative to the data section
	End       int64
	Meta      TensorMeta
	Placement Placement
}

// Numel is the number of elements of the local tensor (a fingerprint's tensor included).
func (e *Entry) Numel() int { return tensor.Numel(e.Shape) }

// IsFingerprint reports whether the entry stores a fingerprint record instead of data: its
// DType and Shape then describe the tensor the record fingerprints, and Raw, ReadRaw and
// Tensor refuse it (File.Fingerprint reads it).
func (e *Entry) IsFingerprint() bool { return e.Meta.Fingerprint != nil }

// File is an opened, fully validated trace file. Tensor data is read on demand.
type File struct {
	Path    string
	Meta    Meta
	Entries []*Entry // sorted by execution order, then key
	byKey   map[string]*Entry
	r       io.ReaderAt
	dataOff int64
	closer  io.Closer
}

// rawEntry is a tensor as the safetensors header describes it.
type rawEntry struct {
	DType       string  `json:"dtype"`
	Shape       []int   `json:"shape"`
	DataOffsets []int64 `json:"data_offsets"`
}

// Open opens and validates the trace file at path.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, &Error{File: path, Msg: err.Error()}
	}
	tf, err := Read(f, st.Size(), path)
	if err != nil {
		f.Close()
		return nil, err
	}
	tf.closer = f
	return tf, nil
}

// Close releases the underlying file, if Open opened it.
func (f *File) Close() error {
	if f.closer != nil {
		return f.closer.Close()
	}
	return nil
}

// Read validates a trace file of the given size read through r; name is used in errors.
func Read(r io.ReaderAt, size int64, name string) (*File, error) {
	hdr, err := readHeader(r, size)
	if err != nil {
		return nil, inFile(err, name, "")
	}
	f, err := parseHeader(hdr, size-8-int64(len(hdr)))
	if err != nil {
		return nil, inFile(err, name, "")
	}
	f.Path, f.r, f.dataOff = name, r, 8+int64(len(hdr))
	return f, nil
}

func readHeader(r io.ReaderAt, size int64) ([]byte, error) {
	if size < 8 {
		return nil, fieldErr("header length", "file has %d bytes, fewer than the 8-byte length prefix", size)
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, fieldErr("header length", "%v", err)
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > maxHeader || int64(n) > size-8 {
		return nil, fieldErr("header length", "claims %d bytes but the file has %d after the prefix", n, size-8)
	}
	hdr := make([]byte, n)
	if _, err := r.ReadAt(hdr, 8); err != nil {
		return nil, fieldErr("header", "%v", err)
	}
	return hdr, nil
}

func parseHeader(hdr []byte, dataLen int64) (*File, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, fieldErr("header", "not a JSON object: %v", err)
	}
	meta, err := parseMetadata(raw["__metadata__"])
	if err != nil {
		return nil, err
	}
	delete(raw, "__metadata__")
	entries := make([]*Entry, 0, len(raw))
	for key, msg := range raw {
		e, err := parseEntry(key, msg, dataLen, meta)
		if err != nil {
			return nil, inFile(err, "", key)
		}
		entries = append(entries, e)
	}
	return newFile(meta, entries)
}

// newFile indexes validated entries, checks that the metadata describes exactly them and that
// they do not overlap, and orders them by execution order.
func newFile(meta *Meta, entries []*Entry) (*File, error) {
	f := &File{Meta: *meta, Entries: entries, byKey: make(map[string]*Entry, len(entries))}
	for _, e := range entries {
		f.byKey[e.Key] = e
	}
	for key := range meta.Tensors {
		if f.byKey[key] == nil {
			return nil, &Error{Tensor: key, Field: "__metadata__.spcheck.tensors", Msg: "describes a tensor the file does not contain"}
		}
	}
	if err := checkOffsets(f.Entries); err != nil {
		return nil, err
	}
	sort.Slice(f.Entries, func(i, j int) bool {
		a, b := f.Entries[i], f.Entries[j]
		if a.Meta.Order != b.Meta.Order {
			return a.Meta.Order < b.Meta.Order
		}
		return a.Key < b.Key
	})
	return f, nil
}

func parseMetadata(msg json.RawMessage) (*Meta, error) {
	if msg == nil {
		return nil, fieldErr("__metadata__", "missing: not an spcheck trace (no %q key)", MetadataKey)
	}
	var md map[string]string
	if err := json.Unmarshal(msg, &md); err != nil {
		return nil, fieldErr("__metadata__", "must map strings to strings: %v", err)
	}
	doc, ok := md[MetadataKey]
	if !ok {
		return nil, fieldErr("__metadata__", "missing: not an spcheck trace (no %q key)", MetadataKey)
	}
	var meta Meta
	if err := json.Unmarshal([]byte(doc), &meta); err != nil {
		return nil, fieldErr("__metadata__."+MetadataKey, "bad JSON: %v", err)
	}
	if err := meta.validate(); err != nil {
		return nil, err
	}
	return &meta, nil
}

func parseEntry(key string, msg json.RawMessage, dataLen int64, meta *Meta) (*Entry, error) {
	var re rawEntry
	if err := json.Unmarshal(msg, &re); err != nil {
		return nil, fieldErr("header", "bad tensor entry: %v", err)
	}
	dt, err := tensor.ParseDType(re.DType)
	if err != nil {
		return nil, fieldErr("dtype", "%v", err)
	}
	if len(re.Shape) > 64 {
		return nil, fieldErr("shape", "has %d dims", len(re.Shape))
	}
	numel := int64(1)
	for _, d := range re.Shape {
		if d < 0 || (d > 0 && numel > math.MaxInt64/int64(d)/8) {
			return nil, fieldErr("shape", "%v is negative or too large", re.Shape)
		}
		numel *= int64(d)
	}
	if len(re.DataOffsets) != 2 {
		return nil, fieldErr("data_offsets", "has %d values, want 2", len(re.DataOffsets))
	}
	b, e := re.DataOffsets[0], re.DataOffsets[1]
	if b < 0 || e < b || e > dataLen {
		return nil, fieldErr("data_offsets", "[%d,%d] outside the %d-byte data section", b, e, dataLen)
	}
	if e-b != numel*int64(dt.Size()) {
		return nil, fieldErr("data_offsets", "span %d bytes, but shape %v of %v needs %d", e-b, re.Shape, dt, numel*int64(dt.Size()))
	}
	return describeEntry(&Entry{Key: key, DType: dt, Shape: re.Shape, Begin: b, End: e}, meta)
}

// describeEntry attaches the validated spcheck metadata of ent's key to ent.
func describeEntry(ent *Entry, meta *Meta) (*Entry, error) {
	tm, ok := meta.Tensors[ent.Key]
	if !ok {
		return nil, fieldErr("__metadata__.spcheck.tensors", "has no entry for this tensor")
	}
	if err := describeFingerprint(ent, &tm, meta); err != nil {
		return nil, err
	}
	p, err := tm.validate(meta.Mesh, ent.Shape)
	if err != nil {
		return nil, err
	}
	ent.Meta, ent.Placement = tm, p
	return ent, nil
}

// describeFingerprint checks a fingerprint entry's metadata and stored record, and makes the
// entry describe the tensor it fingerprints (its dtype and local shape).
func describeFingerprint(ent *Entry, tm *TensorMeta, meta *Meta) error {
	fm := tm.Fingerprint
	if fm == nil {
		return nil
	}
	if meta.Version < FingerprintVersion {
		return fieldErr("fingerprint", "a version-%d file cannot hold fingerprints (they need version %d)", meta.Version, FingerprintVersion)
	}
	p, _ := ParsePlacement(tm.Place) // a bad placement is reported by validate
	for _, a := range p {
		if a.Kind == Partial {
			return fieldErr("fingerprint", "the placement %q has a partial axis (%s): a summand's hash, norms and extremes do not add up to the sum's, so a partial tensor cannot be fingerprinted per rank; dump it in full, or fingerprint it after its reduction", tm.Place, a)
		}
	}
	dt, err := checkFingerprintMeta(fm, tm.Shape)
	if err != nil {
		return err
	}
	if ent.DType != tensor.F64 || len(ent.Shape) != 1 || ent.Shape[0] != fm.recordLen() {
		return fieldErr("fingerprint", "the stored record is %v %v, but %d samples and sketch blocks %v need F64 [%d]", ent.DType, ent.Shape, fm.Samples, fm.Blocks, fm.recordLen())
	}
	ent.DType, ent.Shape = dt, fm.Shape
	return nil
}

// checkOffsets refuses overlapping tensors. Empty tensors hold no bytes, so they overlap
// nothing (and are left out: sorting them among others at the same offset must not matter).
func checkOffsets(es []*Entry) error {
	sorted := slices.DeleteFunc(slices.Clone(es), func(e *Entry) bool { return e.End == e.Begin })
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Begin < sorted[j].Begin })
	for i := 1; i < len(sorted); i++ {
		a, b := sorted[i-1], sorted[i]
		if b.Begin < a.End {
			return &Error{Tensor: b.Key, Field: "data_offsets", Msg: fmt.Sprintf("[%d,%d] overlaps tensor %q [%d,%d]", b.Begin, b.End, a.Key, a.Begin, a.End)}
		}
	}
	return nil
}

// Entry returns the entry with the given key, or nil.
func (f *File) Entry(key string) *Entry { return f.byKey[key] }

// Raw reads the stored bytes of one tensor (not of a fingerprint: see File.Fingerprint).
func (f *File) Raw(e *Entry) ([]byte, error) {
	buf := make([]byte, e.End-e.Begin)
	if err := f.ReadRaw(e, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// Tensor reads one tensor as float64 values.
func (f *File) Tensor(e *Entry) (*tensor.Dense, error) {
	raw, err := f.Raw(e)
	if err != nil {
		return nil, err
	}
	return tensor.FromData(e.Shape, tensor.Decode(e.DType, raw, make([]float64, 0, e.Numel()))), nil
}
