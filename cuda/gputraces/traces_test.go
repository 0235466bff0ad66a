package gputraces

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/oracle"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// driverRE is an NVIDIA driver version, e.g. 580.159.04.
var driverRE = regexp.MustCompile(`^[0-9]+\.[0-9]+(\.[0-9]+)?$`)

// tracesDir holds the traces recorded on GPUs by cuda/run-scenarios.sh.
const tracesDir = "../../testdata/gpu"

// scenario is one recorded GPU run and the verdict the verifier must give it.
type scenario struct {
	name   string
	reason string
	ranks  int
	// buggy is false for a correct plan: the trace must verify. For a bug variant the trace must
	// fail exactly as the simulator says the plan fails on NCCL: the same first-divergence tensor,
	// and in its block diagnosis the same class (correct, misplaced, lost, …) for every block.
	buggy bool
}

var scenarios = []scenario{
	{name: "vllm_tp2_fp32", ranks: 2, reason: "vLLM-style SP, residual sliced rank-aware: correct, fp32"},
	{name: "vllm_tp2_bf16", ranks: 2, reason: "vLLM-style SP, residual sliced rank-aware: correct, bf16"},
	{name: "ppsp_tp2pp2_fp32", ranks: 4, reason: "PP + vLLM SP with the scattered residual gathered at the stage boundary: correct, fp32"},
	{name: "ppsp_tp2pp2_bf16", ranks: 4, reason: "PP + vLLM SP, residual gathered: correct, bf16"},
	{name: "partialp2p_tp2pp2_spoff_fp32", ranks: 4, reason: "Paddle partial P2P (flat chunk, ncclSend/Recv, all_gather_flat) on a replicated boundary tensor: valid, fp32"},
	{name: "partialp2p_tp2pp2_spoff_bf16", ranks: 4, reason: "partial P2P on a replicated boundary tensor: valid, bf16"},
	{name: "full_tp2pp2_fp32", ranks: 4, reason: "full model: TP + Megatron SP + PP (2 micro-batches) + MTP on packed sequences, forward and backward, fp32"},
	{name: "full_tp2pp2_bf16", ranks: 4, reason: "full model, bf16 storage with fp32 accumulation"},
	{name: "procs_tp2_fp32", ranks: 2, reason: "one process per rank, NCCL ids shared through files (the mpirun launch mode)"},
}

// TestRecordedGPUTraces verifies every committed GPU trace against the oracle of its own plan
// with the hardware tolerances (VerifyOptions), and checks the provenance each file must carry.
func TestRecordedGPUTraces(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			dir := filepath.Join(tracesDir, sc.name)
			cand, err := trace.OpenDir(dir)
			if err != nil {
				t.Fatalf("%s (%s): %v", sc.name, sc.reason, err)
			}
			defer cand.Close()
			checkProvenance(t, cand, sc)
			p := plan.Default()
			if err := p.Apply(cand.Files[0].Meta.Plan); err != nil {
				t.Fatal(err)
			}
			refDir := t.TempDir()
			if err := oracle.WriteTrace(refDir, p); err != nil {
				t.Fatal(err)
			}
			ref, err := trace.OpenDir(refDir)
			if err != nil {
				t.Fatal(err)
			}
			defer ref.Close()
			rep, err := verify.Compare(ref, cand, VerifyOptions(p))
			if err != nil {
				t.Fatal(err)
			}
			checkVerdict(t, rep, p, sc)
		})
	}
}

func checkProvenance(t *testing.T, tr *trace.Trace, sc scenario) {
	t.Helper()
	if len(tr.Files) != sc.ranks {
		t.Errorf("%d rank files, want %d", len(tr.Files), sc.ranks)
	}
	for _, f := range tr.Files {
		m := f.Meta
		if m.Producer != "cuda" {
			t.Errorf("%s: producer %q, want cuda", f.Path, m.Producer)
		}
		for _, k := range []string{"device", "driver", "cuda_runtime", "cuda_compiler", "nccl", "cublas", "layout", "launch"} {
			if m.Extra[k] == "" {
				t.Errorf("%s: Meta.Extra lacks %q", f.Path, k)
			}
		}
		if !driverRE.MatchString(m.Extra["driver"]) {
			t.Errorf("%s: driver %q is not a version number", f.Path, m.Extra["driver"])
		}
		if !strings.Contains(m.Extra["device"], "NVIDIA") {
			t.Errorf("%s: device %q is not an NVIDIA GPU", f.Path, m.Extra["device"])
		}
	}
}

func checkVerdict(t *testing.T, rep *verify.Report, p plan.Plan, sc scenario) {
	t.Helper()
	if !sc.buggy {
		if !rep.Verified() {
			var bad []string
			for _, r := range rep.Results {
				if rep.Failed(r) {
					bad = append(bad, r.Name+" ("+string(r.Verdict)+")")
				}
			}
			sort.Strings(bad)
			t.Errorf("%s: a correct run must verify; failing: %v", sc.reason, bad)
		}
		return
	}
	if rep.Verified() {
		t.Fatalf("%s: the buggy run verified", sc.reason)
	}
	sim, err := simulate.Verify(p, VerifyOptions(p))
	if err != nil {
		t.Fatal(err)
	}
	want, got := sim.First(), rep.First()
	if len(want) == 0 || len(got) == 0 || want[0].Name != got[0].Name {
		t.Fatalf("%s: first divergence on the GPUs %v, the simulator's %v", sc.reason, names(got), names(want))
	}
	if w, g := blockClasses(want[0].Diagnosis), blockClasses(got[0].Diagnosis); w != g {
		t.Errorf("%s: %s diagnosed\n  on the GPUs:   %s\n  by simulation: %s", sc.reason, got[0].Name, g, w)
	}
}

func names(rs []*verify.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

// blockClasses renders a diagnosis as its rows' block classes, e.g. "rank 2: correct lost | …".
func blockClasses(d *verify.Diagnosis) string {
	if d == nil {
		return "(no diagnosis)"
	}
	var rows []string
	for _, r := range d.Rows {
		var cls []string
		for _, b := range r.Blocks {
			cls = append(cls, string(b.Class))
		}
		rows = append(rows, fmt.Sprintf("rank %d: %s", r.Rank, strings.Join(cls, " ")))
	}
	return d.Level + " | " + strings.Join(rows, " | ")
}

// TestEveryRecordedTraceIsListed keeps the table and testdata/gpu in step: a trace nobody checks
// is a trace that can rot.
func TestEveryRecordedTraceIsListed(t *testing.T) {
	entries, err := os.ReadDir(tracesDir)
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, sc := range scenarios {
		listed[sc.name] = true
	}
	for _, e := range entries {
		if e.IsDir() && !listed[e.Name()] {
			t.Errorf("testdata/gpu/%s is not in the scenarios table", e.Name())
		}
	}
}
