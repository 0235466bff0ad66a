package calibrate

import (
	"bytes"
	"encoding/binary"
	"math"
	"testing"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// candidate runs q on CPU ranks and, if nudge is set, multiplies one element of the named
// tensor on rank 0 by (1+nudge) directly in its file bytes.
func candidate(t *testing.T, q plan.Plan, name string, nudge float64) *trace.Trace {
	t.Helper()
	c, err := simulate.Compile(q, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := runtime.Run(c.Programs, c.Init)
	if err != nil {
		t.Fatal(err)
	}
	files, err := c.TraceFiles(res)
	if err != nil {
		t.Fatal(err)
	}
	var fs []*trace.File
	for r, b := range files {
		f, err := trace.Read(bytes.NewReader(b), int64(len(b)), trace.FileName(r))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range f.Entries {
			if r == 0 && nudge != 0 && e.Meta.Name == name {
				at := 8 + int64(binary.LittleEndian.Uint64(b)) + e.Begin
				v := math.Float64frombits(binary.LittleEndian.Uint64(b[at:]))
				binary.LittleEndian.PutUint64(b[at:], math.Float64bits(v*(1+nudge)))
			}
		}
		fs = append(fs, f)
	}
	tr, err := trace.New("cand", fs)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func verdictOf(t *testing.T, rep *verify.Report, name string) verify.Verdict {
	for _, r := range rep.Results {
		if r.Name == name {
			return r.Verdict
		}
	}
	t.Fatalf("no tensor %s", name)
	return ""
}

// TestCalibratedToleranceCatchesWhatTheConstantMisses: a clean run in an order the calibration
// never saw (tp 2 × pp 2 with Megatron SP) verifies under calibrated tolerances, and a 1e-12
// relative corruption of one gradient element — invisible at RTolF64 = 1e-10 — is caught.
func TestCalibratedToleranceCatchesWhatTheConstantMisses(t *testing.T) {
	p, err := plan.Parse("packed=3:5,mtp=1")
	if err != nil {
		t.Fatal(err)
	}
	cal, err := Calibrate(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(cal.Plans) < 3 {
		t.Fatalf("only %d recomputations: %v", len(cal.Plans), cal.Plans)
	}
	ref, err := pipeline.Reference(p)
	if err != nil {
		t.Fatal(err)
	}
	q := p
	q.TP, q.PP, q.SP = 2, 2, plan.SPMegatron
	const target = "grad/layers.0.mlp.up.weight"
	cases := []struct {
		reason     string
		nudge      float64
		calibrated bool
		want       verify.Verdict
	}{
		{"clean run, constant tolerance", 0, false, verify.Close},
		{"clean run, calibrated", 0, true, verify.Close},
		{"1e-12 corruption, constant tolerance misses it", 1e-12, false, verify.Close},
		{"1e-12 corruption, calibrated catches it", 1e-12, true, verify.Diverged},
	}
	for _, c := range scenario.Cases(t, cases) {
		opt := verify.Options{}
		if c.calibrated {
			opt.Calibrated = cal.RTol
		}
		rep, err := verify.Compare(ref, candidate(t, q, target, c.nudge), opt)
		if err != nil {
			t.Fatal(err)
		}
		if got := verdictOf(t, rep, target); got != c.want {
			t.Errorf("%s: %s is %v, want %v", c.reason, target, got, c.want)
		}
		if c.nudge == 0 && !rep.Verified() {
			t.Errorf("%s: the clean run failed", c.reason)
		}
	}
}

func TestAlternativesAreValidAndDistinct(t *testing.T) {
	p := plan.Default()
	p.Heads, p.Hidden, p.FFN, p.Layers = 4, 16, 32, 2
	alts := Alternatives(p)
	seen := map[string]bool{}
	for _, q := range alts {
		if err := q.Validate(); err != nil || seen[q.String()] || q.Model.Seed != p.Seed || q.Hidden != p.Hidden {
			t.Fatalf("bad alternative %q (%v)", q.String(), err)
		}
		seen[q.String()] = true
	}
	if len(alts) != MaxPlans {
		t.Fatalf("%d alternatives for a model that tp 2 and 4 both split, want %d", len(alts), MaxPlans)
	}
}

// TestCalibrateLowPrecision: for a bf16 plan the recomputations run in bf16 and give every
// compared tensor a noise scale, at least the single-device run's; a correct bf16 candidate
// verifies under it, and a candidate with one gradient scaled by 2 does not.
func TestCalibrateLowPrecision(t *testing.T) {
	p, err := plan.Parse("hidden=16,heads=4,ffn=32,seq=8,dtype=bf16")
	if err != nil {
		t.Fatal(err)
	}
	res, err := Calibrate(p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Noise == nil || len(res.Plans) == 0 || res.RTol != nil {
		t.Fatalf("bf16 calibration: noise %d tensors, %d plans, rtol %v; want noise scales from recomputations", len(res.Noise), len(res.Plans), res.RTol)
	}
	ref, err := pipeline.Reference(p)
	if err != nil {
		t.Fatal(err)
	}
	single, err := pipeline.Noise(p, ref)
	if err != nil {
		t.Fatal(err)
	}
	for name, n := range single {
		if c := res.Noise[name]; c.Elem < n.Elem || c.Norm < n.Norm {
			t.Errorf("%s: calibrated noise %+v below the single-device run's %+v", name, c, n)
		}
	}
	q := p
	q.TP, q.SP = 2, plan.SPMegatron
	for _, c := range scenario.Cases(t, []struct {
		reason, bug string
		pass        bool
	}{{"a correct tp=2 run verifies under the calibrated bf16 noise", "", true}, {"a gradient averaged instead of summed still fails", "sp-norm-grad-avg", false}}) {
		q.Bug = c.bug
		v, err := bugs.VariantOf(q)
		if err != nil {
			t.Fatal(err)
		}
		rep, err := pipeline.Verify(q, v, verify.Options{Noise: res.Noise, SkipHashes: true})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Verified() != c.pass {
			t.Errorf("bug %q: verified %v under the calibrated noise, want %v", c.bug, rep.Verified(), c.pass)
		}
	}
}
