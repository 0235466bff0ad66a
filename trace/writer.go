package trace

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"sort"

	"github.com/spcheck/spcheck/tensor"
)

// Writer collects one rank's tensors and writes them as a trace file. Output is deterministic:
// tensors are laid out by key, JSON keys are sorted.
type Writer struct {
	meta    Meta
	tensors map[string]pending
	dump    *Dump
}

type pending struct {
	dtype tensor.DType
	shape []int
	bytes []byte    // the encoded tensor, or nil when src is encoded at write time (AddRef)
	src   []float64 // AddRef's values
}

func (p pending) size() int64 {
	if p.src != nil {
		return int64(len(p.src)) * int64(p.dtype.Size())
	}
	return int64(len(p.bytes))
}

// encoded is the tensor's bytes, encoding AddRef's values now.
func (p pending) encoded() []byte {
	if p.src != nil {
		return tensor.Encode(p.dtype, p.src)
	}
	return p.bytes
}

// writeData writes the tensor's bytes to out, encoding AddRef's values a chunk at a time.
func (p pending) writeData(out io.Writer, buf []byte) ([]byte, error) {
	if p.src == nil {
		_, err := out.Write(p.bytes)
		return buf, err
	}
	const chunk = 1 << 16 // elements
	sz := p.dtype.Size()
	for lo := 0; lo < len(p.src); lo += chunk {
		part := p.src[lo:min(lo+chunk, len(p.src))]
		if cap(buf) < len(part)*sz {
			buf = make([]byte, chunk*sz)
		}
		buf = buf[:len(part)*sz]
		for i, v := range part {
			p.dtype.PutValue(buf[i*sz:], v)
		}
		if _, err := out.Write(buf); err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// NewWriter starts a file for one rank. Format, Version and Tensors are filled in.
func NewWriter(m Meta) *Writer {
	m.Format, m.Version, m.Tensors = Format, Version, map[string]TensorMeta{}
	return &Writer{meta: m, tensors: map[string]pending{}}
}

// Add stores t, rounded to dtype, under key with its metadata. Keys must be unique; the
// placement must parse (checked again, with everything else, when the file is read).
func (w *Writer) Add(key string, tm TensorMeta, dtype tensor.DType, t *tensor.Dense) error {
	return w.add(key, tm, pending{dtype: dtype, shape: append([]int{}, t.Shape...), bytes: tensor.Encode(dtype, t.Data)})
}

func (w *Writer) add(key string, tm TensorMeta, p pending) error {
	if _, dup := w.tensors[key]; dup {
		return fmt.Errorf("trace writer: tensor key %q added twice", key)
	}
	if _, err := ParsePlacement(tm.Place); err != nil {
		return fmt.Errorf("trace writer: tensor %q: %w", key, err)
	}
	fp, ok, err := w.fingerprint(&tm, p.dtype, p.shape, p.encoded)
	if err != nil {
		return fmt.Errorf("trace writer: tensor %q: fingerprint: %w", key, err)
	}
	if ok {
		p = fp
		w.meta.Version = FingerprintVersion
	}
	w.meta.Tensors[key] = tm
	w.tensors[key] = p
	return nil
}

// AddRef is Add without the copy: t's values are encoded only when the file is written
// (WriteTo, WriteDir, Bytes) or opened (File), so t must not change until then. A writer of
// large tensors that it keeps anyway (the oracle's results) holds one copy of them instead of
// two, and WriteDir streams them to disk a chunk at a time.
func (w *Writer) AddRef(key string, tm TensorMeta, dtype tensor.DType, t *tensor.Dense) error {
	return w.add(key, tm, pending{dtype: dtype, shape: append([]int{}, t.Shape...), src: t.Data})
}

// Bytes renders the file.
func (w *Writer) Bytes() ([]byte, error) {
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteTo writes the file to out: the header, then each tensor's bytes in key order, without
// rendering the whole file in memory first.
func (w *Writer) WriteTo(out io.Writer) (int64, error) {
	doc, err := json.Marshal(w.meta)
	if err != nil {
		return 0, err
	}
	keys := w.sortedKeys()
	header := map[string]any{"__metadata__": map[string]string{MetadataKey: string(doc)}}
	var off int64
	for _, k := range keys {
		p := w.tensors[k]
		shape := p.shape
		if shape == nil {
			shape = []int{}
		}
		header[k] = rawEntry{DType: p.dtype.String(), Shape: shape, DataOffsets: []int64{off, off + p.size()}}
		off += p.size()
	}
	hdr, err := json.Marshal(header)
	if err != nil {
		return 0, err
	}
	for len(hdr)%8 != 0 { // safetensors pads the header with spaces to 8-byte alignment
		hdr = append(hdr, ' ')
	}
	if g, ok := out.(interface{ Grow(int) }); ok {
		g.Grow(8 + len(hdr) + int(off))
	}
	if err := binary.Write(out, binary.LittleEndian, uint64(len(hdr))); err != nil {
		return 0, err
	}
	if _, err := out.Write(hdr); err != nil {
		return 0, err
	}
	var buf []byte
	for _, k := range keys {
		if buf, err = w.tensors[k].writeData(out, buf); err != nil {
			return 0, err
		}
	}
	return 8 + int64(len(hdr)) + off, nil
}

func (w *Writer) sortedKeys() []string {
	keys := make([]string, 0, len(w.tensors))
	for k := range w.tensors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// File returns the file Bytes would render, already opened, without the JSON round trip: the
// same entries, metadata and validation as Read, for in-memory traces (the simulator's and the
// oracle's in a fuzz campaign). name is the file's name in errors.
func (w *Writer) File(name string) (*File, error) {
	meta := w.meta
	meta.Tensors = maps.Clone(w.meta.Tensors) // the file stays valid if the writer goes on
	if err := meta.validate(); err != nil {
		return nil, inFile(err, name, "")
	}
	var data segments
	entries := make([]*Entry, 0, len(w.tensors))
	for _, k := range w.sortedKeys() {
		p := w.tensors[k]
		begin := data.size
		data.add(p.encoded())
		e, err := describeEntry(&Entry{Key: k, DType: p.dtype, Shape: p.shape, Begin: begin, End: data.size}, &meta)
		if err != nil {
			return nil, inFile(err, name, k)
		}
		entries = append(entries, e)
	}
	f, err := newFile(&meta, entries)
	if err != nil {
		return nil, inFile(err, name, "")
	}
	f.Path, f.r = name, &data
	return f, nil
}

// segments reads byte slices laid end to end as one data section, so an in-memory file shares
// its writer's encoded tensors instead of copying them.
type segments struct {
	parts  [][]byte
	starts []int64
	size   int64
}

func (s *segments) add(b []byte) {
	s.parts = append(s.parts, b)
	s.starts = append(s.starts, s.size)
	s.size += int64(len(b))
}

// ReadAt implements io.ReaderAt.
func (s *segments) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, fmt.Errorf("trace: negative offset %d", off)
	}
	i := sort.Search(len(s.starts), func(i int) bool { return s.starts[i] > off }) - 1
	n := 0
	for ; n < len(p) && i >= 0 && i < len(s.parts); i++ {
		at := off + int64(n) - s.starts[i]
		if at < int64(len(s.parts[i])) {
			n += copy(p[n:], s.parts[i][at:])
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// FileName is the conventional name of rank r's file in a trace directory.
func FileName(rank int) string { return fmt.Sprintf("rank-%05d.safetensors", rank) }

// WriteDir writes the file into dir under FileName(rank), creating dir; it streams the
// tensors to disk (WriteTo) rather than rendering the file in memory.
func (w *Writer) WriteDir(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, FileName(w.meta.Rank))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	if _, err := w.WriteTo(bw); err != nil {
		f.Close()
		return "", err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return path, f.Close()
}
