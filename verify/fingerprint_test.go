package verify

import (
	"github.com/spcheck/spcheck/internal/scenario"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify/verifytest"
)

// fpShape is a [64, 48] float64 activation: 3072 elements, 256 of them sampled.
var fpShape = []int{64, 48}

const fpSamples = 256

func fpData() []float64 { return tensor.NewRNG(7, "fp").NormalTensor(1, fpShape...).Data }

// fpTrace is x as a single-device trace, in full or fingerprinted.
func fpTrace(t *testing.T, x []float64, fingerprint bool) *trace.Trace {
	t.Helper()
	r := verifytest.Single("ref", verifytest.Provenance{Producer: "oracle", Plan: "p"})
	if fingerprint {
		r.SetDump(&trace.Dump{Fingerprint: true, Samples: fpSamples})
	}
	r.Add(0, "x", verifytest.Meta("act/x", trace.Activation, 1, "", fpShape...), tensor.F64, fpShape, x...)
	tr, err := r.Trace()
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// fpTP is x on two tp ranks, split as place says ("tp=shard(d)" or "" for replicated copies),
// fingerprinted; edit changes rank 1's piece.
func fpTP(t *testing.T, x []float64, place string, edit func([]float64)) *trace.Trace {
	t.Helper()
	r := verifytest.TP("cand", 2, verifytest.Provenance{Producer: "simulate", Plan: "p"}).SetDump(&trace.Dump{Fingerprint: true, Samples: fpSamples})
	full := tensor.FromData(fpShape, x)
	for rank := 0; rank < 2; rank++ {
		piece := full.Clone()
		if place != "" {
			piece = full.Chunk(1, 2)[rank].Clone()
		}
		if rank == 1 && edit != nil {
			edit(piece.Data)
		}
		r.Add(rank, "x", verifytest.Meta("act/x", trace.Activation, 1, place, fpShape...), tensor.F64, piece.Shape, piece.Data...)
	}
	tr, err := r.Trace()
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// unsampled is a flat index of x's sample key that no producer samples.
func unsampled(t *testing.T) int {
	key, thr := trace.SampleKey("act/x"), trace.SampleThreshold(tensor.Numel(fpShape), fpSamples)
	for g := 0; g < tensor.Numel(fpShape); g++ {
		if key.Bits(uint64(g)) >= thr {
			return g
		}
	}
	t.Fatal("every element is sampled")
	return 0
}

func compareOneTensor(t *testing.T, ref, cand *trace.Trace) *Result {
	t.Helper()
	rep, err := Compare(ref, cand, Options{})
	if err != nil {
		t.Fatal(err)
	}
	return rep.Results[0]
}

// TestFingerprintVerdicts: what a comparison on fingerprints sees, and — the caveat every such
// report prints — what it cannot.
func TestFingerprintVerdicts(t *testing.T) {
	x := fpData()
	g := unsampled(t)
	cases := []struct {
		reason  string
		ref     *trace.Trace
		cand    *trace.Trace
		verdict Verdict
		check   func(*Result) string
	}{
		{"equal data, fingerprinted on both sides, one of them sharded: equal hashes",
			fpTrace(t, x, true), fpTP(t, x, "tp=shard(1)", nil), Identical, nil},
		{"a full reference against a fingerprinted candidate: the verifier fingerprints the full side",
			fpTrace(t, x, false), fpTP(t, x, "tp=shard(1)", nil), Identical, nil},
		{"one unsampled element off by 1000: no sample sees it, the norms and sketches prove it",
			fpTrace(t, x, true), fpTrace(t, withAt(x, g, 1000), true), Diverged, func(r *Result) string {
				if r.Outside != 0 || r.Fingerprint.Bound <= r.NormTol || len(r.Fingerprint.Blocks) == 0 {
					return "want no sampled element outside, a norm bound past the tolerance and the block flagged"
				}
				return ""
			}},
		{"one unsampled element 20 tolerances off: the full comparison fails it, a fingerprint cannot see it (the caveat)",
			fpTrace(t, x, true), fpTrace(t, withAt(x, g, x[g]+20*RTolF64*(math.Abs(x[g])+1)), true), Close, nil},
		{"two rows swapped inside one sketch block of rank 1's shard: norms and sums unchanged, the sample catches it",
			fpTrace(t, x, true), fpTP(t, x, "tp=shard(1)", func(p []float64) {
				for c := 0; c < fpShape[1]/2; c++ {
					p[c], p[fpShape[1]/2+c] = p[fpShape[1]/2+c], p[c]
				}
			}), Diverged, func(r *Result) string {
				if r.Outside == 0 || !slices.Equal(r.Ranks, []int{1}) {
					return "want sampled elements outside tolerance on rank 1"
				}
				return ""
			}},
		{"replicated copies that disagree on fingerprints",
			fpTrace(t, x, true), fpTP(t, x, "", func(p []float64) { p[0] += 1 }), ReplicaMismatch, func(r *Result) string {
				if len(r.CandReplicas) != 1 || len(r.CandReplicas[0].Groups) != 2 {
					return "want one disagreement of two groups"
				}
				return ""
			}},
	}
	for _, c := range scenario.Cases(t, cases) {
		r := compareOneTensor(t, c.ref, c.cand)
		if r.Verdict != c.verdict || r.Fingerprint == nil {
			t.Fatalf("%s: verdict %s (fingerprint %v), want %s", c.reason, r.Verdict, r.Fingerprint != nil, c.verdict)
		}
		if c.check != nil {
			if msg := c.check(r); msg != "" {
				t.Fatalf("%s: %s; got outside %d, bound %g vs %g, blocks %v, ranks %v", c.reason, msg, r.Outside, r.Fingerprint.Bound, r.NormTol, r.Fingerprint.Blocks, r.Ranks)
			}
		}
	}
	// The caveat case, compared in full, fails: the fingerprint verdict above is a miss, not
	// a tolerance difference.
	full := compareOneTensor(t, fpTrace(t, x, false), fpTrace(t, withAt(x, g, x[g]+20*RTolF64*(math.Abs(x[g])+1)), false))
	if full.Verdict != Diverged {
		t.Fatalf("in full the one-element error is %s, want diverged", full.Verdict)
	}
}

// TestFingerprintPieceOutsideItsRows: a sampled index outside the rank's own rows is bad input
// naming file, rank, tensor and field.
func TestFingerprintPieceOutsideItsRows(t *testing.T) {
	x := fpData()
	r := verifytest.TP("cand", 2, verifytest.Provenance{Producer: "simulate"}).SetDump(&trace.Dump{Fingerprint: true, Samples: fpSamples})
	r.SetCoord(1, map[string]int{"tp": 0}) // rank 1 fingerprints as if it held rank 0's columns
	half := tensor.FromData(fpShape, x).Chunk(1, 2)
	for rank := 0; rank < 2; rank++ {
		r.Add(rank, "x", verifytest.Meta("act/x", trace.Activation, 1, "tp=shard(1)", fpShape...), tensor.F64, half[rank].Shape, half[rank].Clone().Data...)
	}
	cand, err := r.Trace()
	if err != nil {
		t.Fatal(err)
	}
	cand.Files[1].Meta.Coord = map[string]int{"tp": 1} // but says it holds its own
	_, err = Compare(fpTrace(t, x, true), cand, Options{})
	if err == nil || !strings.Contains(err.Error(), "cand/rank-00001.safetensors") || !strings.Contains(err.Error(), "rank 1") ||
		!strings.Contains(err.Error(), `tensor "act/x"`) || !strings.Contains(err.Error(), "field fingerprint.samples") {
		t.Fatalf("got %v", err)
	}
}

func withAt(x []float64, i int, v float64) []float64 {
	y := slices.Clone(x)
	y[i] = v
	return y
}

// TestFingerprintDiff: the bitwise A/B diff compares equality hashes where a side is
// fingerprinted, a full side fingerprinted by the verifier: equal exactly when the bytes are.
func TestFingerprintDiff(t *testing.T) {
	x := fpData()
	for _, c := range scenario.Cases(t, []struct {
		reason string
		b      *trace.Trace
		equal  bool
	}{
		{"the same tensor, sharded and fingerprinted", fpTP(t, x, "tp=shard(1)", nil), true},
		{"one bit of one element changed", fpTP(t, x, "tp=shard(1)", func(p []float64) { p[3] = math.Nextafter(p[3], 10) }), false},
	}) {
		d, err := Diff(fpTrace(t, x, false), c.b, Options{}, trace.Activation)
		if err != nil {
			t.Fatal(err)
		}
		e := d.Entries[0]
		if e.Equal() != c.equal || !strings.HasPrefix(e.MD5A, "fp:") || !strings.HasPrefix(e.MD5B, "fp:") {
			t.Fatalf("%s: %s vs %s, equal %v", c.reason, e.MD5A, e.MD5B, e.Equal())
		}
	}
}
