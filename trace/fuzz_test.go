package trace

import (
	"bytes"
	"testing"

	"github.com/spcheck/spcheck/tensor"
)

// FuzzRead: any byte string either reads as a valid trace file or gives an *Error — no panic,
// and no allocation beyond the input's size (the reader checks lengths before allocating).
func FuzzRead(f *testing.F) {
	f.Add(sampleFile(f, 0))
	f.Add(fingerprintFile(f))
	f.Add(sampleFile(f, 1)[:40])
	f.Add([]byte{8, 0, 0, 0, 0, 0, 0, 0, '{', '}', ' ', ' ', ' ', ' ', ' ', ' '})
	f.Fuzz(func(t *testing.T, b []byte) {
		file, err := Read(bytes.NewReader(b), int64(len(b)), "fuzz")
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		for _, e := range file.Entries {
			if e.IsFingerprint() {
				if _, err := file.Fingerprint(e); err != nil {
					if _, ok := err.(*Error); !ok {
						t.Fatalf("fingerprint %q: error of type %T: %v", e.Key, err, err)
					}
				}
				continue
			}
			if _, err := file.Tensor(e); err != nil {
				t.Fatalf("validated entry %q unreadable: %v", e.Key, err)
			}
		}
	})
}

// FuzzParsePlacement: parsing never panics and what parses prints back to itself.
func FuzzParsePlacement(f *testing.F) {
	for _, s := range []string{"tp=shard(0)", "dp=shard(0),tp=shard(1,block=6)", "tp=partial,pp=stage", "tp=partial(avg)", "dp=shard(0,segments=2),tp=shard(1,segments=3:1)", "x=(", "a=shard(99999999999999999999)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePlacement(s)
		if err != nil {
			return
		}
		q, err := ParsePlacement(p.String())
		if err != nil || q.String() != p.String() {
			t.Fatalf("%q → %q does not re-parse (%v)", s, p.String(), err)
		}
	})
}

// fingerprintFile is a file holding a fingerprint and full tensors, for the fuzz corpus.
func fingerprintFile(t testing.TB) []byte {
	b, err := fingerprintWriter(t).Bytes()
	must(t, err)
	return b
}

// fingerprintWriter holds rank 1's fingerprint of a [32,8] tp shard (4 samples) and a loss.
func fingerprintWriter(t testing.TB) *Writer {
	w := NewWriter(sampleMeta(1))
	w.SetDump(&Dump{Fingerprint: true, Samples: 4})
	x := tensor.NewRNG(1, "w").NormalTensor(1, 16, 8)
	must(t, w.Add("w", TensorMeta{Name: "param/w", Kind: Param, Order: 1, Place: "tp=shard(0)", Shape: []int{32, 8}}, tensor.F64, x))
	must(t, w.Add("loss", TensorMeta{Name: "loss/main", Kind: Loss, Order: 2}, tensor.F64, tensor.Scalar(0.5)))
	return w
}
