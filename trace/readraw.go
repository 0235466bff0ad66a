package trace

import "fmt"

// ReadRaw reads the stored bytes of e into dst, which must be exactly e.End-e.Begin bytes long.
// It is Raw for callers that stream many tensors (the verifier) and reuse one buffer instead of
// allocating, and zeroing, a fresh one per tensor.
func (f *File) ReadRaw(e *Entry, dst []byte) error {
	if e.IsFingerprint() {
		return &Error{File: f.Path, Tensor: e.Key, Field: "fingerprint", Msg: "the tensor is stored as a fingerprint, not its data: dump it in full (--dump) to read its values"}
	}
	if int64(len(dst)) != e.End-e.Begin {
		return &Error{File: f.Path, Tensor: e.Key, Field: "data", Msg: fmt.Sprintf("read into a %d-byte buffer, but the tensor has %d bytes", len(dst), e.End-e.Begin)}
	}
	if _, err := f.r.ReadAt(dst, f.dataOff+e.Begin); err != nil {
		return &Error{File: f.Path, Tensor: e.Key, Field: "data", Msg: err.Error()}
	}
	return nil
}
