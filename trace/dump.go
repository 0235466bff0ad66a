package trace

import (
	"fmt"
	"regexp"
	"slices"

	"github.com/spcheck/spcheck/tensor"
)

// Dump says how a producer stores its tensors: in full, or as fingerprints with some tensors in
// full (the bisect workflow's targeted re-run: fingerprints everywhere, full data where the
// diagnosis needs it). The nil *Dump stores everything in full.
type Dump struct {
	// Fingerprint stores every tensor that Names and Regex do not select as a fingerprint.
	Fingerprint bool
	// Names and Regex select, by logical name, the tensors stored in full.
	Names []string
	Regex *regexp.Regexp
	// Samples is the sample size aimed at (0: DefaultSamples).
	Samples int
}

// Full reports whether the tensor with this logical name is stored in full.
func (d *Dump) Full(name string) bool {
	if d == nil || !d.Fingerprint {
		return true
	}
	return slices.Contains(d.Names, name) || (d.Regex != nil && d.Regex.MatchString(name))
}

func (d *Dump) samples() int {
	if d == nil || d.Samples <= 0 {
		return DefaultSamples
	}
	return d.Samples
}

// SetDump makes the writer store tensors as d says, from the next Add or AddRef on. Some tensors
// are stored in full whatever d says: a partial sum (its summands' hashes and norms do not make
// the sum's), a sharded tensor whose global shape the metadata does not give, and a tensor whose
// data is no larger than its fingerprint would be (worthFingerprint).
func (w *Writer) SetDump(d *Dump) { w.dump = d }

// fingerprint returns the pending fingerprint record of a tensor stored as raw in dtype, or
// false when the writer's Dump keeps it in full.
func (w *Writer) fingerprint(tm *TensorMeta, dtype tensor.DType, shape []int, raw func() []byte) (pending, bool, error) {
	if w.dump.Full(tm.Name) {
		return pending{}, false, nil
	}
	p, err := ParsePlacement(tm.Place)
	if err != nil {
		return pending{}, false, err
	}
	global, sharded := tm.Shape, false
	for _, a := range p {
		if a.Kind == Partial {
			return pending{}, false, nil
		}
		sharded = sharded || a.Kind == Shard
	}
	if global == nil {
		if sharded {
			return pending{}, false, nil
		}
		global = shape
	}
	if len(global) != len(shape) {
		return pending{}, false, fmt.Errorf("global shape %v and local shape %v differ in rank", global, shape)
	}
	if !worthFingerprint(global, dtype, w.dump.samples()) {
		return pending{}, false, nil
	}
	spans, _, err := PieceSpans(p, w.meta.Mesh, PieceCoord(&w.meta, tm), global)
	if err != nil {
		return pending{}, false, err
	}
	b := raw()
	fp := ComputeFingerprint(tm.Name, dtype, b, shape, global, spans, w.dump.samples())
	if !sharded {
		fp.MD5 = tensor.MD5Bytes(b)
	}
	tm.Shape = global
	tm.Fingerprint = fp.meta(shape)
	rec := fp.record()
	return pending{dtype: tensor.F64, shape: []int{len(rec)}, bytes: tensor.Encode(tensor.F64, rec)}, true, nil
}

// worthFingerprint reports whether a tensor of this global shape and dtype is larger than its
// fingerprint record at the given sample size. It depends on global facts only, so every rank of
// a sharded tensor decides the same way.
func worthFingerprint(global []int, dt tensor.DType, samples int) bool {
	n := tensor.Numel(global)
	rec := statFields + 2*min(n, samples)
	for _, g := range global {
		rec += 2 * sketchBlocks(g)
	}
	return int64(n)*int64(dt.Size()) > int64(rec)*8
}
