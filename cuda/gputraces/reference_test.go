package gputraces

import (
	"path/filepath"
	"testing"

	"github.com/spcheck/spcheck/oracle"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// referenceScenarios are GPU float64 reference runs (ReferencePlan's plans, recorded on an H200
// by cuda/gpu-bench.sh): every tensor must equal the Go oracle's to ReferenceRelTol.
var referenceScenarios = []scenario{
	{name: "ref_fp64_default", ranks: 1, reason: "the default model (MTP depth 1, untied head, vocab 37) unsplit in float64 on one GPU"},
	{name: "ref_fp64_packed_tied", ranks: 1, reason: "packed sequences 3:2:3 with a tied head and MTP, float64 on one GPU"},
}

// TestGPUReferenceTraces cross-checks the GPU reference with the oracle: the same tensors, each
// within ReferenceRelTol normwise, float64 throughout, on one rank of a GPU.
func TestGPUReferenceTraces(t *testing.T) {
	for _, sc := range referenceScenarios {
		t.Run(sc.name, func(t *testing.T) {
			cand, err := trace.OpenDir(filepath.Join(tracesDir, sc.name))
			if err != nil {
				t.Fatalf("%s (%s): %v", sc.name, sc.reason, err)
			}
			defer cand.Close()
			checkProvenance(t, cand, sc)
			p := plan.Default()
			if err := p.Apply(cand.Files[0].Meta.Plan); err != nil {
				t.Fatal(err)
			}
			if p.DType != tensor.F64 || p.World() != 1 {
				t.Fatalf("%s: plan %q is not a float64 world-1 reference", sc.name, p)
			}
			if q := ReferencePlan(p); q.String() != p.String() {
				t.Errorf("%s: recorded plan %q is not its own ReferencePlan %q", sc.name, p, q)
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
			rep, err := verify.Compare(ref, cand, verify.Options{SkipHashes: true})
			if err != nil {
				t.Fatal(err)
			}
			worst, name := 0.0, ""
			for _, r := range rep.Results {
				switch {
				case r.Verdict == verify.Missing || r.Verdict == verify.Extra || r.Verdict == verify.ShapeMismatch:
					t.Errorf("%s: %s", r.Name, r.Verdict)
				case r.CandDType != tensor.F64 && r.Kind != trace.Input:
					t.Errorf("%s: recorded as %s, want F64", r.Name, r.CandDType)
				case !(r.RMSRel <= ReferenceRelTol):
					t.Errorf("%s: normwise relative difference %.3g from the oracle > %g", r.Name, r.RMSRel, ReferenceRelTol)
				}
				if r.RMSRel > worst {
					worst, name = r.RMSRel, r.Name
				}
			}
			if len(rep.Results) < 100 {
				t.Errorf("%d tensors compared: the run recorded too little", len(rep.Results))
			}
			t.Logf("%s: %d tensors, worst normwise relative difference %.3g (%s)", sc.name, len(rep.Results), worst, name)
		})
	}
}
