package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/internal/scenario"
)

// signatureLine is the first "signature: …" line of out after the line starting with after.
func signatureLine(out, after string) string {
	if i := strings.Index(out, after); i >= 0 {
		out = out[i:]
	}
	for _, l := range strings.Split(out, "\n") {
		if s, ok := strings.CutPrefix(strings.TrimSpace(l), "signature: "); ok {
			return s
		}
	}
	return ""
}

// TestCompareShowsReproSignature: a buggy run written to disk and compared with the oracle's
// trace by plain `spcheck compare` prints the same signature `spcheck repro` shows for the same
// plan — the diagnosis lives in the verifier, not in the catalogue.
func TestCompareShowsReproSignature(t *testing.T) {
	for _, c := range scenario.Cases(t, []struct {
		bug, want, reason string
	}{
		{"partial-p2p-under-sp", "identical receivers (2 reference blocks lost)", "PaddleFleet#589: every receiver rebuilds the same tensor"},
		{"vllm-residual-slice-offset0", "TP rank 0 right, the other TP ranks wrong", "vLLM #33322: residual sliced at offset 0, typed tp coordinates"},
		{"mtp-eh-proj-reduce-scatter", "scaled ×2 (tp)", "Megatron 06e9f28b30: a wrong adjoint scales the gradient by tp"},
		{"sp-norm-grad-avg", "scaled ×1/2 (1/tp)", "an AVG instead of a SUM all-reduce: ×1/tp"},
		{"mtp-ids-rolled-after-sp-scatter", "wrong at positions [3]", "mbridge #138: the ids at a TP shard boundary only"},
	}) {
		b, err := bugs.Lookup(c.bug)
		if err != nil {
			t.Fatal(err)
		}
		p := b.MinimalPlan().String()
		dir := t.TempDir()
		ref, cand := filepath.Join(dir, "ref"), filepath.Join(dir, "cand")
		if code, _, stderr := runCmd("oracle", "--plan", p, "--out", ref); code != exitOK {
			t.Fatalf("%s: oracle: exit %d: %s", c.reason, code, stderr)
		}
		if code, _, stderr := runCmd("run", "--plan", p, "--out", cand); code != exitOK {
			t.Fatalf("%s: run: exit %d: %s", c.reason, code, stderr)
		}
		code, compared, _ := runCmd("compare", ref, cand)
		if code != exitFailed {
			t.Fatalf("%s: compare: exit %d, want %d", c.reason, code, exitFailed)
		}
		code, repro, _ := runCmd("repro", c.bug)
		if code != exitFailed {
			t.Fatalf("%s: repro: exit %d, want %d", c.reason, code, exitFailed)
		}
		got, shown := signatureLine(compared, "first divergence"), signatureLine(repro, "== the bug on plan")
		if got != c.want || shown != c.want {
			t.Errorf("%s: compare shows signature %q, repro %q; want %q", c.reason, got, shown, c.want)
		}
	}
}
