package gputraces

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/bugs"
	scenariofile "github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/oracle"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
	simrt "github.com/spcheck/spcheck/simulate/runtime"
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
	// fail exactly as the simulator says the plan fails on NCCL: the same first-divergence tensor
	// and verdict, and in its block diagnosis the same class (correct, misplaced, lost, …) for
	// every block.
	buggy bool
	// runError marks a bug variant whose programs cannot run (docs/bugs.md's run-error
	// signature): the directory holds no trace but the executor's messages (runErrorFile), which
	// must name the op and the operand shapes the simulator's kernel error names, on its ranks.
	runError bool
}

// runErrorFile records a run the executor refused: the line "plan: PLAN", then spexec's lines.
const runErrorFile = "spexec.txt"

// Bug-variant scenarios: the catalogue's training bugs (docs/bugs.md) on the small model of the
// correct scenarios, fp32, 2 GPUs (cuda/bug-scenarios.txt).
var bugScenarios = []scenario{
	{name: "bug_partialp2p_sp_tp2pp2_fp32", ranks: 4, buggy: true,
		reason: "seed 001: partial P2P under Megatron SP (real ncclSend/Recv + all-gather of flat chunks), forward and backward: identical receivers"},
	{name: "bug_vllm_send_allgather_tp2pp2_fp32", ranks: 4, buggy: true,
		reason: "vLLM #24021: the scattered SP residual sent by slice + all-gather: every receiver rebuilds the same mixed residual"},
	{name: "bug_vllm_residual0_tp2pp2_fp32", ranks: 4, buggy: true,
		reason: "seed 002: vLLM SP residual sliced at offset 0 after the PP boundary: TP rank 0 right, rank 1 wrong"},
	{name: "bug_vllm_residual0_tp2mtp1_fp32", ranks: 2, buggy: true,
		reason: "seed 002 at tp 2 without PP: the MTP depth's input is the unsharded norm whose fused add slices at offset 0"},
	{name: "bug_ppsp_not_gathered_tp2pp2_fp32", ranks: 4, runError: true,
		reason: "seed 002: the PP receiver keeps its residual shard [L,H] but runs the first norm on [N,H]: the add refuses the shapes on the stage-1 ranks"},
	{name: "bug_sp_norm_grad_not_reduced_tp2_fp32", ranks: 2, buggy: true,
		reason: "Megatron #1446: SP norm-weight grads never all-reduced over TP: replica mismatch"},
	{name: "bug_sp_norm_grad_avg_tp2_fp32", ranks: 2, buggy: true,
		reason: "SP norm-weight grads AVG- instead of SUM-reduced: scaled by 1/tp"},
	{name: "bug_eh_proj_rs_tp2_fp32", ranks: 2, buggy: true,
		reason: "Megatron !3594: eh_proj gather's adjoint reduce-scatters an already replicated grad: ×tp"},
	{name: "bug_embedding_grad_pp2_fp32", ranks: 2, buggy: true,
		reason: "embedding grads of the first and last stage's copies not all-reduced: replica mismatch"},
	{name: "bug_cu_shifted_tp2_fp32", ranks: 2, buggy: true,
		reason: "seed 003: the MTP layer's cu_seqlens shifted by the author's formula"},
	{name: "bug_cu_compacted_tp2_fp32", ranks: 2, buggy: true,
		reason: "seed 003 review: compacted cu_seqlens ending before the row: the tail tokens are left unprocessed (zero) by the GPU kernels too"},
	{name: "bug_mtp_ignore_index_tp2_fp32", ranks: 2, buggy: true,
		reason: "ms-swift #8194: the MTP loss counts -100 labels"},
	{name: "bug_mtp_ids_rolled_tp2_fp32", ranks: 2, buggy: true,
		reason: "mbridge #138: MTP ids rolled after the SP scatter (a changed starting tensor)"},
	{name: "bug_mtp_no_lambda_tp2_fp32", ranks: 2, buggy: true,
		reason: "the MTP loss gradient injected without λ/D"},
	{name: "bug_mtp_not_per_mb_tp2_fp32", ranks: 2, buggy: true,
		reason: "the MTP loss gradient not divided by the micro-batch count"},
	{name: "bug_recompute_toggled_tp2_fp32", ranks: 2, buggy: true,
		reason: "seed 003: the checkpointed MTP layer recomputed with the fused RoPE positions (~recompute symbols)"},
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
// at the default tolerance (the noise of the plan's single-device run in its dtype,
// pipeline.WithNoise), and checks the provenance each file must carry.
func TestRecordedGPUTraces(t *testing.T) {
	for _, sc := range scenariofile.Cases(t, allScenarios()) {
		t.Run(sc.name, func(t *testing.T) {
			dir := filepath.Join(tracesDir, sc.name)
			if sc.runError {
				checkRunError(t, dir, sc)
				return
			}
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
			opt, err := pipeline.WithNoise(p, ref, verify.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rep, err := verify.Compare(ref, cand, opt)
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
	v, err := bugs.VariantOf(p)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := pipeline.Verify(p, v, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, got := sim.First(), rep.First()
	if len(want) == 0 || len(got) == 0 || want[0].Name != got[0].Name {
		t.Fatalf("%s: first divergence on the GPUs %v, the simulator's %v", sc.reason, names(got), names(want))
	}
	if want[0].Verdict != got[0].Verdict {
		t.Errorf("%s: %s is %s on the GPUs, %s by simulation", sc.reason, got[0].Name, got[0].Verdict, want[0].Verdict)
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
	for _, sc := range append(allScenarios(), referenceScenarios...) {
		listed[sc.name] = true
	}
	for _, e := range entries {
		if e.IsDir() && !listed[e.Name()] {
			t.Errorf("testdata/gpu/%s is not in the scenarios table", e.Name())
		}
	}
}

func allScenarios() []scenario { return append(slices.Clone(scenarios), bugScenarios...) }

// shapeRE is a shape as the simulator ("[2 8 16]") or the executor ("[2,8,16]") prints it.
var shapeRE = regexp.MustCompile(`\[[0-9]+(?:[ ,][0-9]+)*\]`)

// checkRunError: the simulator's run of the recorded plan fails with a kernel error (rank, op
// index, operand shapes). Which TP rank of the failing stage reports first is a race (on the
// GPUs too: the first failure aborts the others), so on the GPUs some rank of the same TP group
// must have failed at that op with the same shapes in its message; and no trace was written.
func checkRunError(t *testing.T, dir string, sc scenario) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, runErrorFile))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	planStr, ok := strings.CutPrefix(lines[0], "plan: ")
	if !ok {
		t.Fatalf("%s: first line %q, want \"plan: PLAN\"", runErrorFile, lines[0])
	}
	p := plan.Default()
	if err := p.Apply(planStr); err != nil {
		t.Fatal(err)
	}
	v, err := bugs.VariantOf(p)
	if err != nil {
		t.Fatal(err)
	}
	c, err := simulate.Compile(p, v)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Run()
	var se *simrt.Error
	if !errors.As(err, &se) || se.Kind != simrt.ErrKernel || len(se.Ranks) == 0 {
		t.Fatalf("%s: the simulator gives %v, want a kernel error", sc.reason, err)
	}
	shapes := shapeRE.FindAllString(se.Msg, -1)
	if len(shapes) == 0 {
		t.Fatalf("the simulator's error names no shape: %s", se.Msg)
	}
	if _, err := os.Stat(filepath.Join(dir, trace.FileName(0))); err == nil {
		t.Errorf("%s: a failed run left a trace file", dir)
	}
	op := fmt.Sprintf("op #%d %s ", se.Op, c.Programs[se.Ranks[0]].Ops[se.Op].Op)
	var seen []string
	for _, r := range tpGroupOf(c, se.Ranks[0]) {
		line := failureOf(lines[1:], r)
		seen = append(seen, line)
		if !strings.Contains(line, op) {
			continue
		}
		missing := slices.ContainsFunc(shapes, func(sh string) bool { return !strings.Contains(line, strings.ReplaceAll(sh, " ", ",")) })
		if !missing {
			return
		}
	}
	t.Errorf("%s: no rank of rank %d's TP group failed at %q with shapes %v on the GPUs (the simulator: %s); the executor said:\n%s",
		sc.reason, se.Ranks[0], op, shapes, se.Msg, strings.Join(seen, "\n"))
}

// tpGroupOf lists the ranks with rank r's coordinates on every axis but tp.
func tpGroupOf(c *simulate.Compiled, r int) []int {
	var out []int
	for q, prog := range c.Programs {
		same := true
		for axis, v := range c.Programs[r].Coord {
			same = same && (axis == simulate.AxisTP || prog.Coord[axis] == v)
		}
		if same {
			out = append(out, q)
		}
	}
	return out
}

// failureOf is the executor's "spexec: rank R FAILED: …" line for rank r ("" if none).
func failureOf(lines []string, r int) string {
	prefix := fmt.Sprintf("spexec: rank %d FAILED: ", r)
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}
