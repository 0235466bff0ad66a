package torchdist

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// ncclDir holds the example's traces recorded on 2 H200 GPUs with torch.distributed's NCCL
// backend (cuda/torch-nccl.sh; testdata/torch-nccl/README.md). These tests need no torch: they
// verify the committed traces.
const ncclDir = "../../testdata/torch-nccl"

// ncclVersionKeys must each have a line "KEY VALUE" in versions.txt.
var ncclVersionKeys = []string{"torch", "cuda", "nccl", "device", "driver"}

// ncclDriverRE is an NVIDIA driver version, e.g. 580.159.04.
var ncclDriverRE = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?$`)

// TestNCCLTraceVerdicts: what spcheck compare decides on the GPU runs against the GPU
// single-device reference — the same verdicts as the gloo runs of TestVerdicts.
func TestNCCLTraceVerdicts(t *testing.T) {
	versions := readVersions(t)
	ref := open(t, filepath.Join(ncclDir, "ref"))
	checkNCCLProvenance(t, ref, "none", versions)
	cases := []verdictCase{
		{cand: "tp2/mb1/none", verified: true,
			reason: "tp 2 (Megatron SP: NCCL all-gather / reduce-scatter) agrees with the single-GPU reference"},
		{cand: "tp2/mb2/none", verified: true,
			reason: "tp 2 with two GPipe micro-batches reassembles to the reference's full batch"},
		{cand: "pp2/mb1", verified: true,
			reason: "pp 2: the stage hand-off through NCCL send/recv is exact"},
		{cand: "pp2/mb2", verified: true,
			reason: "pp 2 with two micro-batches"},
		{cand: "tp2/mb1/no-norm-allreduce", first: "grad/layers.3.norm.weight", verdict: verify.ReplicaMismatch,
			failing: normGrads, check: checkNCCLPartialReplicas,
			reason: "unreduced norm grads: each TP rank keeps its partial sum, first seen on the last layer"},
		{cand: "tp2/mb2/no-norm-allreduce", first: "grad/layers.3.norm.weight", verdict: verify.ReplicaMismatch,
			failing: normGrads, check: checkNCCLPartialReplicas,
			reason: "unreduced norm grads, accumulated over two micro-batches"},
	}
	for _, c := range cases {
		t.Run(c.cand, func(t *testing.T) {
			cand := open(t, filepath.Join(ncclDir, c.cand))
			checkNCCLProvenance(t, cand, "nccl", versions)
			checkVerdictCase(t, ref, cand, c)
		})
	}
}

// checkNCCLPartialReplicas: the two TP ranks hold two different copies.
func checkNCCLPartialReplicas(t *testing.T, first *verify.Result) {
	t.Helper()
	want := [][]int{{0}, {1}}
	if len(first.CandReplicas) != 1 || !slices.EqualFunc(first.CandReplicas[0].Groups, want, slices.Equal) {
		t.Errorf("replica groups %+v, want one disagreement with groups %v", first.CandReplicas, want)
	}
	checkUnreduced(t, first)
}

// TestNCCLNormGradFacts: in the no-norm-allreduce run the TP ranks' norm-weight grads are the
// summands of the correct run's NCCL-reduced grad; in the correct run they are bit-equal.
func TestNCCLNormGradFacts(t *testing.T) {
	good, bad := open(t, filepath.Join(ncclDir, "tp2/mb1/none")), open(t, filepath.Join(ncclDir, "tp2/mb1/no-norm-allreduce"))
	for _, name := range normGrads {
		g0, g1 := tensorOf(t, good, 0, name), tensorOf(t, good, 1, name)
		if !tensor.BitEqual(g0, g1) {
			t.Errorf("correct run: %s differs across TP", name)
		}
		b0, b1 := tensorOf(t, bad, 0, name), tensorOf(t, bad, 1, name)
		if tensor.BitEqual(b0, b1) {
			t.Errorf("no-norm-allreduce run: %s is equal across TP, want each rank's own partial", name)
		}
		if e := relErr(sum(b0, b1), g0); e > partialSumRTol {
			t.Errorf("%s: the TP partials sum to the reduced grad only within %.3g", name, e)
		}
	}
}

// readVersions reads versions.txt ("KEY VALUE" lines) and checks the keys every record needs.
func readVersions(t *testing.T) map[string]string {
	t.Helper()
	f, err := os.Open(filepath.Join(ncclDir, "versions.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	v := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, val, ok := strings.Cut(sc.Text(), " "); ok {
			v[k] = val
		}
	}
	for _, k := range ncclVersionKeys {
		if v[k] == "" {
			t.Errorf("versions.txt lacks %q", k)
		}
	}
	if !strings.Contains(v["device"], "NVIDIA") {
		t.Errorf("versions.txt: device %q is not an NVIDIA GPU", v["device"])
	}
	if !ncclDriverRE.MatchString(v["driver"]) {
		t.Errorf("versions.txt: driver %q is not a version number", v["driver"])
	}
	return v
}

// checkNCCLProvenance: every file was written by torch on a CUDA device with the given backend
// ("none" for the single-process reference), by the torch that versions.txt names.
func checkNCCLProvenance(t *testing.T, tr *trace.Trace, backend string, versions map[string]string) {
	t.Helper()
	for _, f := range tr.Files {
		m := f.Meta
		where := fmt.Sprintf("%s rank %d", tr.Dir, m.Rank)
		if m.Producer != "torch" {
			t.Errorf("%s: producer %q, want torch", where, m.Producer)
		}
		if m.Extra["backend"] != backend {
			t.Errorf("%s: backend %q, want %q", where, m.Extra["backend"], backend)
		}
		if want := fmt.Sprintf("cuda:%d", m.Rank); m.Extra["device"] != want {
			t.Errorf("%s: device %q, want %q (one GPU per rank)", where, m.Extra["device"], want)
		}
		if m.Extra["torch"] != versions["torch"] {
			t.Errorf("%s: torch %q, versions.txt says %q", where, m.Extra["torch"], versions["torch"])
		}
		if !strings.Contains(m.Extra["shape"], "dtype=torch.float64") {
			t.Errorf("%s: shape %q is not a float64 run", where, m.Extra["shape"])
		}
	}
}
