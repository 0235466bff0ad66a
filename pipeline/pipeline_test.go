package pipeline

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/ir"
	simrt "github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/verify"
)

func mustParse(t testing.TB, s string) plan.Plan {
	t.Helper()
	p, err := plan.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// residualAtZero is vLLM's residual sliced at offset 0 on every TP rank (vllm-project/vllm
// PR 33322's MiddleAllReduceRMSNorm), as a program rewrite selected by role.
var residualAtZero = &simulate.Variant{Name: "pipeline-test.residual-at-zero", Summary: "rank-unaware residual slice",
	Programs: rewrite(simulate.RoleResidualSlice, func(o ir.Op) ir.Op {
		o.Attr.Ints = map[string][]int{"dim": o.Attr.Ints["dim"], "start": {0}, "len": o.Attr.Ints["len"]}
		return o
	})}

func rewrite(role string, f func(o ir.Op) ir.Op) func(c *simulate.Compiled) error {
	return func(c *simulate.Compiled) error {
		for _, prog := range c.Programs {
			ir.Rewrite(prog, func(o ir.Op) ([]ir.Op, bool) {
				if o.Role != role {
					return nil, false
				}
				return []ir.Op{f(o)}, true
			})
		}
		return nil
	}
}

// TestVariantIsApplied: a variant passed with a plan naming it rewrites the programs, and the
// verifier sees the divergence start at the first fused add after a stage's unsharded norm.
func TestVariantIsApplied(t *testing.T) {
	p := mustParse(t, "tp=2,pp=2,sp=vllm,mtp=0,bug="+residualAtZero.Name)
	rep, err := Verify(p, residualAtZero, verify.Options{})
	if err != nil {
		t.Fatal(err)
	}
	first := rep.First()
	if rep.Verified() || len(first) == 0 || first[0].Name != "act/layers.1.attn_residual" {
		t.Fatalf("first divergence %v, want act/layers.1.attn_residual", first)
	}
	if rep.Command != VerifyCommand(p) || !strings.Contains(rep.Command, "bug="+residualAtZero.Name) {
		t.Errorf("reproduce command %q, want %q", rep.Command, VerifyCommand(p))
	}
}

// TestExecutorsAgree: the simulator in memory, the simulator writing its files, and the
// directory it wrote read back as a trace give the same verdicts.
func TestExecutorsAgree(t *testing.T) {
	p := mustParse(t, "tp=2,pp=2,sp=vllm,mtp=0,bug="+residualAtZero.Name)
	dir := filepath.Join(t.TempDir(), "sim")
	var verdicts []string
	for _, ex := range []Executor{Simulator{}, Simulator{Out: dir}, TraceDir(dir)} {
		o, err := Run(p, residualAtZero, ex, Options{RefDir: filepath.Join(t.TempDir(), "ref")})
		if err != nil || o.RunErr != nil {
			t.Fatalf("%T: %v %v", ex, err, o.RunErr)
		}
		var b strings.Builder
		for _, r := range o.Report.Results {
			b.WriteString(r.Name + ":" + string(r.Verdict) + " ")
		}
		verdicts = append(verdicts, b.String())
		o.Close()
	}
	for i, v := range verdicts[1:] {
		if v != verdicts[0] {
			t.Errorf("executor %d: verdicts differ from the in-memory simulator's:\n%s\nvs\n%s", i+1, v, verdicts[0])
		}
	}
}

// TestRefusedRun: a run the simulator refuses (here every residual slice asks for rows the
// tensor does not have) is the outcome's RunErr, naming ranks and ops, with no report; Verify
// turns it into an error.
func TestRefusedRun(t *testing.T) {
	bad := &simulate.Variant{Name: "pipeline-test.slice-past-end", Programs: rewrite(simulate.RoleResidualSlice, func(o ir.Op) ir.Op {
		o.Attr.Ints = map[string][]int{"dim": o.Attr.Ints["dim"], "start": {1 << 20}, "len": o.Attr.Ints["len"]}
		return o
	})}
	p := mustParse(t, "tp=2,pp=2,sp=vllm,mtp=0,bug="+bad.Name)
	o, err := Run(p, bad, Simulator{}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var re *simrt.Error
	if !errors.As(o.RunErr, &re) || len(re.Ranks) == 0 || o.Report != nil || o.Cand != nil {
		t.Fatalf("run error %v, report %v: want a runtime error naming ranks and no report", o.RunErr, o.Report)
	}
	if _, err := Verify(p, bad, verify.Options{}); !errors.As(err, &re) {
		t.Errorf("Verify: %v, want the runtime error", err)
	}
	if _, err := Run(p, nil, Simulator{}, Options{}); err == nil || !strings.Contains(err.Error(), "no variant was given") {
		t.Errorf("a plan naming a bug run without its variant: %v", err)
	}
}

// TestCUDAExecutorFailure: an executor binary that cannot run is the outcome's RunErr.
func TestCUDAExecutorFailure(t *testing.T) {
	x := CUDA{Exec: filepath.Join(t.TempDir(), "no-such-spexec"), Work: t.TempDir()}
	o, err := Run(mustParse(t, "tp=2,dtype=fp32"), nil, x, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o.RunErr == nil || !strings.Contains(o.RunErr.Error(), "the executor failed") || o.Report != nil {
		t.Errorf("run error %v, want the executor's failure and no report", o.RunErr)
	}
	if !strings.HasPrefix(x.Command(o.Plan), "spcheck gpu --plan ") {
		t.Errorf("command %q", x.Command(o.Plan))
	}
}

// BenchmarkTinyEndToEnd: the tiny plan (hidden 16, 2 layers, seq 8, tp 2 × pp 2; the
// defaults otherwise) through oracle, simulator and comparison.
func BenchmarkTinyEndToEnd(b *testing.B) {
	p := mustParse(b, "tp=2,pp=2,hidden=16,layers=2,seq=8")
	for _, c := range []struct {
		name string
		opt  verify.Options
	}{{"with-md5s", verify.Options{}}, {"verdicts-only", verify.Options{SkipHashes: true}}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				rep, err := Verify(p, nil, c.opt)
				if err != nil || !rep.Verified() {
					b.Fatal(err)
				}
			}
		})
	}
}
