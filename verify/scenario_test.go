package verify_test

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/verify"
	"github.com/spcheck/spcheck/verify/verifytest"
)

func compare(t *testing.T, s verifytest.Scenario, opt verify.Options) *verify.Report {
	t.Helper()
	ref, cand, err := s.Traces()
	if err != nil {
		t.Fatalf("%s: building traces: %v", s.Name, err)
	}
	rep, err := verify.Compare(ref, cand, opt)
	if err != nil {
		t.Fatalf("%s: Compare: %v", s.Name, err)
	}
	return rep
}

func result(t *testing.T, rep *verify.Report, name string) *verify.Result {
	t.Helper()
	for _, r := range rep.Results {
		if r.Name == name {
			return r
		}
	}
	t.Fatalf("no result for %s", name)
	return nil
}

func fmtValues(v verify.Values) string {
	parts := make([]string, 0, len(v.Head)+len(v.Tail)+1)
	for _, x := range v.Head {
		parts = append(parts, fmt.Sprint(x))
	}
	if v.Elided > 0 {
		parts = append(parts, "…")
	}
	for _, x := range v.Tail {
		parts = append(parts, fmt.Sprint(x))
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

// TestSeed001LostValues: the diagnosis names exactly the lost values of PaddleFleet#589's table for both
// branches, at flat-chunk granularity, with every receiver holding chunk 0 of TP0 and chunk 1 of
// TP1.
func TestSeed001LostValues(t *testing.T) {
	cases := []struct {
		branch string
		lost   []string
		reason string
	}{
		{"develop", []string{"rank 0 block 1 [100, 120, 140, 160]", "rank 1 block 0 [180, 200, 220, 240]"}, "PaddleFleet#589 develop: NormPipe bw ×2"},
		{"unify", []string{"rank 0 block 1 [50, 60, 70, 80]", "rank 1 block 0 [90, 100, 110, 120]"}, "PaddleFleet#589 unify: EmptyLayer identity"},
	}
	for _, c := range scenario.Cases(t, cases) {
		t.Run(c.branch, func(t *testing.T) {
			rep := compare(t, verifytest.Seed001(c.branch), verify.Options{})
			if rep.Verified() {
				t.Fatalf("%s: verified a corrupted trace", c.reason)
			}
			first := rep.First()
			if len(first) != 1 || first[0].Name != "agrad/layers.1.output" {
				t.Fatalf("%s: first divergence %v, want agrad/layers.1.output", c.reason, names(first))
			}
			r := first[0]
			if r.Verdict != verify.Diverged || !slices.Equal(r.Ranks, []int{0, 1}) {
				t.Errorf("%s: verdict %s ranks %v, want diverged on ranks [0 1]", c.reason, r.Verdict, r.Ranks)
			}
			d := r.Diagnosis
			if d == nil || d.Level != verify.LevelChunk || d.Parts != 2 {
				t.Fatalf("%s: diagnosis %+v, want chunk level with 2 parts", c.reason, d)
			}
			var lost []string
			for _, l := range d.Lost {
				lost = append(lost, fmt.Sprintf("rank %d block %d %s", l.Rank, l.Block, fmtValues(l.Values)))
			}
			if !slices.Equal(lost, c.lost) {
				t.Errorf("%s: lost %q, want %q", c.reason, lost, c.lost)
			}
			want := [][]string{{"correct", "duplicated r1.b1"}, {"duplicated r0.b0", "correct"}}
			for i, row := range d.Rows {
				for j, b := range row.Blocks {
					got := string(b.Class)
					if b.Source != nil {
						got += fmt.Sprintf(" r%d.b%d", b.Source.Rank, b.Source.Block)
					}
					if got != want[i][j] {
						t.Errorf("%s: rank %d block %d is %q, want %q", c.reason, row.Rank, j, got, want[i][j])
					}
				}
			}
			if g := result(t, rep, "grad/layers.0.mlp.fc2.weight"); g.Role != verify.Consequence {
				t.Errorf("%s: the later grad's role is %q, want consequence", c.reason, g.Role)
			}
			if l := result(t, rep, "loss/main"); l.Verdict != verify.Identical {
				t.Errorf("%s: loss verdict %s, want identical", c.reason, l.Verdict)
			}
		})
	}
}

func names(rs []*verify.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

// TestSeed002RankOneRowsWrong: vLLM #33322's residual slice, worked by hand — rank 0's residual rows are right, rank 1's
// are wrong, and the norm output after it is a consequence.
func TestSeed002RankOneRowsWrong(t *testing.T) {
	rep := compare(t, verifytest.Seed002(), verify.Options{})
	first := rep.First()
	if len(first) != 1 || first[0].Name != "act/layers.0.residual_out" {
		t.Fatalf("first divergence %v, want act/layers.0.residual_out", names(first))
	}
	r := first[0]
	if !slices.Equal(r.Ranks, []int{1}) || r.Region() != "[2:4, 0:2]" {
		t.Errorf("ranks %v region %s, want [1] and [2:4, 0:2]", r.Ranks, r.Region())
	}
	rows := r.Diagnosis.Rows
	if len(rows) != 2 || !rows[0].OK() || rows[1].OK() || rows[1].Outside != 4 {
		t.Errorf("rows %+v: want rank 0 right, rank 1 with 4 elements wrong", rows)
	}
	if got := fmtValues(rows[1].Blocks[0].Actual); got != "[155, -34, 200, -50]" {
		t.Errorf("rank 1 holds %s, want [[155,-34],[200,-50]]", got)
	}
	if x := result(t, rep, "act/layers.0.allreduce"); x.Verdict != verify.Close {
		t.Errorf("allreduce (fp32 against fp64, exact values) is %s, want close", x.Verdict)
	}
	if y := result(t, rep, "act/layers.0.norm_out"); y.Verdict != verify.Diverged || y.Role != verify.Consequence || y.Region() != "[2:4, 0:2]" {
		t.Errorf("norm_out: %s %s region %s, want a diverged consequence at rows 2..3", y.Verdict, y.Role, y.Region())
	}
}

// TestScaledGradient: Megatron-LM 06e9f28b30's ×tp gradient is diagnosed as scaled ×2, named tp.
func TestScaledGradient(t *testing.T) {
	rep := compare(t, verifytest.ScaledTP(), verify.Options{})
	for _, name := range []string{"agrad/mtp.0.eh_proj.in", "grad/mtp.0.eh_proj.weight"} {
		r := result(t, rep, name)
		if r.Verdict != verify.Diverged || r.Diagnosis == nil {
			t.Fatalf("%s: verdict %s, want diverged with a diagnosis", name, r.Verdict)
		}
		for _, row := range r.Diagnosis.Rows {
			for _, b := range row.Blocks {
				if b.Class != verify.Scaled || b.Scale != 2 || b.ScaleName != "tp" {
					t.Errorf("%s rank %d: %s %g %q, want scaled ×2 (tp)", name, row.Rank, b.Class, b.Scale, b.ScaleName)
				}
			}
		}
	}
	if first := rep.First(); len(first) != 1 || first[0].Name != "agrad/mtp.0.eh_proj.in" {
		t.Errorf("first divergence %v", names(first))
	}
}

// TestReplicaMismatch: the unreduced SP norm grad (3 on rank 0, 7 on rank 1, 10 wanted) is a
// replica mismatch naming both ranks; AVG instead of SUM is ×1/tp.
func TestReplicaMismatch(t *testing.T) {
	rep := compare(t, verifytest.ReplicaSplit(), verify.Options{})
	r := result(t, rep, "grad/layers.0.norm1.weight")
	if r.Verdict != verify.ReplicaMismatch || len(r.CandReplicas) != 1 {
		t.Fatalf("verdict %s replicas %+v, want one replica mismatch", r.Verdict, r.CandReplicas)
	}
	if g := r.CandReplicas[0].Groups; len(g) != 2 || !slices.Equal(g[0], []int{0}) || !slices.Equal(g[1], []int{1}) {
		t.Errorf("groups %v, want [[0] [1]]", g)
	}
	if !slices.Equal(r.Ranks, []int{0, 1}) {
		t.Errorf("ranks off %v, want both (3 and 7 are both wrong)", r.Ranks)
	}
	avg := result(t, rep, "grad/layers.0.norm2.weight")
	// A parameter gradient feeds nothing later in the step: the second grad is a root of its own.
	if avg.Verdict != verify.Diverged || avg.Role != verify.Independent {
		t.Fatalf("AVG grad: %s %s, want diverged, an independent root", avg.Verdict, avg.Role)
	}
	if b := avg.Diagnosis.Rows[0].Blocks[0]; b.Class != verify.Scaled || b.Scale != 0.5 || b.ScaleName != "1/tp" {
		t.Errorf("AVG grad block %+v, want scaled ×1/2 (1/tp)", b)
	}
}

// TestNaNInOneRank: a NaN where the reference is finite is non-finite, on rank 1 only.
func TestNaNInOneRank(t *testing.T) {
	rep := compare(t, verifytest.NaNRank(), verify.Options{})
	r := result(t, rep, "act/layers.1.attn.out")
	if r.Verdict != verify.NonFinite || r.NonFinite != 1 || !slices.Equal(r.Ranks, []int{1}) || r.Region() != "[2:3, 1:2]" {
		t.Errorf("verdict %s nonfinite %d ranks %v region %s, want non-finite 1 on rank 1 at [2:3, 1:2]", r.Verdict, r.NonFinite, r.Ranks, r.Region())
	}
}

// TestCleanRunVerifies: a correct tp=2 run with a partial sum off by rounding verifies.
func TestCleanRunVerifies(t *testing.T) {
	rep := compare(t, verifytest.Clean(), verify.Options{})
	if !rep.Verified() {
		for _, r := range rep.Results {
			t.Logf("%s: %s", r.Name, r.Verdict)
		}
		t.Fatal("a clean run did not verify")
	}
	want := map[string]verify.Verdict{"loss/main": verify.Identical, "act/layers.0.output": verify.Identical, "act/layers.0.mlp.down": verify.Close}
	for name, v := range want {
		if got := result(t, rep, name).Verdict; got != v {
			t.Errorf("%s: %s, want %s", name, got, v)
		}
	}
	if len(rep.First()) != 0 {
		t.Errorf("a clean run has a first divergence %v", names(rep.First()))
	}
}

// TestSignatures: every scenario's first divergence gets the signature its bug has, worked out
// from full values, with typed coordinates and the whole-tensor factor where there is one.
func TestSignatures(t *testing.T) {
	for _, c := range scenario.Cases(t, []struct {
		s        verifytest.Scenario
		kind     verify.SignatureKind
		text     string
		multiple float64 // 0: not a multiple
		reason   string
	}{
		{verifytest.Seed001("develop"), verify.SigIdenticalReceivers, "identical receivers (2 reference blocks lost)", 0, "PaddleFleet#589: every receiver gathers the same chunks"},
		{verifytest.Seed002(), verify.SigTP0Right, "TP rank 0 right, the other TP ranks wrong", 0, "vLLM #33322: the residual sliced at offset 0 on every TP rank"},
		{verifytest.ScaledTP(), verify.SigScaled, "scaled ×2 (tp)", 2, "Megatron-LM 06e9f28b30: the gradient ×tp"},
		{verifytest.ReplicaSplit(), verify.SigReplicaMismatch, "replica mismatch", 0.3, "an unreduced replicated grad: copies disagree (the rank-0 copy is 3/10 of the sum)"},
	}) {
		first := compare(t, c.s, verify.Options{}).First()
		if len(first) == 0 || first[0].Signature == nil {
			t.Fatalf("%s: no signature on the first divergence", c.reason)
		}
		sig := first[0].Signature
		if sig.Kind != c.kind || sig.String() != c.text {
			t.Errorf("%s: signature %s %q, want %s %q", c.reason, sig.Kind, sig.String(), c.kind, c.text)
		}
		if want := c.multiple != 0; sig.Multiple != want || (want && math.Abs(sig.Factor-c.multiple) > 1e-12) {
			t.Errorf("%s: multiple %v ×%g, want %v ×%g", c.reason, sig.Multiple, sig.Factor, want, c.multiple)
		}
	}
	row := compare(t, verifytest.Seed002(), verify.Options{}).First()[0].Diagnosis.Rows[1]
	if tp, ok := row.Coord.Of("tp"); !ok || tp != 1 || row.Coord.String() != "tp=1" {
		t.Errorf("row 1 coord %v (tp %d, %v), want tp=1", row.Coord, tp, ok)
	}
}
