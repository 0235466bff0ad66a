package pipeline_test

import (
	"fmt"
	"github.com/spcheck/spcheck/internal/scenario"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// fpRun runs plan s on the simulator against the oracle, both storing their tensors as d says.
func fpRun(t *testing.T, s string, d *trace.Dump) *verify.Report {
	t.Helper()
	p, err := plan.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	v, err := bugs.VariantOf(p)
	if err != nil {
		t.Fatal(err)
	}
	o, err := pipeline.Run(p, v, pipeline.Simulator{Dump: d}, pipeline.Options{RefDump: d})
	if err != nil {
		t.Fatal(err)
	}
	if o.RunErr != nil {
		t.Fatal(o.RunErr)
	}
	return o.Report
}

// fpSize is a model large enough that its tensors are bigger than their fingerprints.
const fpSize = "hidden=64,ffn=128,seq=32,vocab=128,mtp=0"

// TestFingerprintCorrectPlansVerify: correct plans verify on fingerprints, in float64 and
// against the noise of a bf16 single-device run, most tensors compared on fingerprints.
func TestFingerprintCorrectPlansVerify(t *testing.T) {
	for _, c := range scenario.Cases(t, []struct {
		reason, plan string
		samples      int
	}{
		{"TP+PP+SP in float64: shards of every dim, replicas, stage-local tensors", "tp=2,pp=2,sp=megatron," + fpSize, 0},
		// bf16 elements are 2 bytes, a sampled one 16: a smaller sample keeps fingerprints smaller than the tensors.
		{"bf16: judged against the single-device bf16 run's noise on the same samples", "tp=2,sp=megatron,dtype=bf16," + fpSize, 128},
	}) {
		rep := fpRun(t, c.plan, &trace.Dump{Fingerprint: true, Samples: c.samples})
		if !rep.Verified() {
			t.Fatalf("%s: %d failures on fingerprints, first %v", c.reason, rep.Failures(), rep.First())
		}
		if n := rep.Fingerprinted(); n < len(rep.Results)/2 {
			t.Fatalf("%s: only %d of %d tensors compared on fingerprints", c.reason, n, len(rep.Results))
		}
	}
}

// TestFingerprintBisect: a catalogue bug is caught on fingerprints at the first divergence the
// full comparison names, on the same ranks; the targeted re-run the report prints (those
// tensors in full, the rest fingerprinted) gives the full comparison's signature.
func TestFingerprintBisect(t *testing.T) {
	s := "tp=2,pp=2,sp=vllm,bug=vllm-residual-slice-offset0," + fpSize
	full := fpRun(t, s, nil)
	fp := fpRun(t, s, &trace.Dump{Fingerprint: true})
	if full.Verified() || fp.Verified() {
		t.Fatalf("the bug went unseen: full verified %v, fingerprints verified %v", full.Verified(), fp.Verified())
	}
	want, got := full.First(), fp.First()
	if len(want) != 1 || len(got) != 1 || got[0].Name != want[0].Name || got[0].Fingerprint == nil || !equalInts(got[0].Ranks, want[0].Ranks) {
		t.Fatalf("first divergence on fingerprints %v (ranks %v), in full %v (ranks %v)", names(got), got[0].Ranks, names(want), want[0].Ranks)
	}
	if got[0].Diagnosis != nil || got[0].Signature != nil {
		t.Fatal("a fingerprint comparison claimed a block diagnosis")
	}
	rd := fp.Redump()
	if rd == nil || len(rd.Names) != 1 || rd.Names[0] != want[0].Name || len(rd.Commands) != 3 || !strings.Contains(rd.Commands[1], "--dump '"+want[0].Name+"'") {
		t.Fatalf("targeted re-run %+v", rd)
	}
	var text, js strings.Builder
	if err := reports.Text(&text, fp, reports.Options{}); err != nil {
		t.Fatal(err)
	}
	if err := reports.JSON(&js, fp); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"compared on fingerprints: ", verify.FingerprintCaveat[:40], "sampled elements", "--fingerprint --dump '" + want[0].Name + "' --out oracle.full", rd.Commands[2]} {
		if !strings.Contains(strings.Join(strings.Fields(text.String()), " "), strings.Join(strings.Fields(want), " ")) {
			t.Fatalf("the text report lacks %q:\n%s", want, text.String())
		}
	}
	for _, want := range []string{`"redump":`, `"fingerprint":`, `"norm_dev_bound":`} {
		if !strings.Contains(js.String(), want) {
			t.Fatalf("the JSON report lacks %s", want)
		}
	}
	again := fpRun(t, s, &trace.Dump{Fingerprint: true, Names: rd.Names})
	first := again.First()
	if len(first) != 1 || first[0].Fingerprint != nil || first[0].Signature == nil || first[0].Signature.String() != want[0].Signature.String() {
		t.Fatalf("after the targeted re-run: %v, want the full comparison's signature %q", names(first), want[0].Signature)
	}
	if again.Redump() != nil {
		t.Fatal("the re-run's report asks for another re-run")
	}
}

// TestFingerprintDeterministic: fingerprint traces and their comparison do not depend on
// GOMAXPROCS.
func TestFingerprintDeterministic(t *testing.T) {
	s := "tp=2,pp=2,sp=vllm,bug=vllm-residual-slice-offset0," + fpSize
	var outs [2]string
	for i, procs := range []int{1, 4} {
		old := runtime.GOMAXPROCS(procs)
		rep := fpRun(t, s, &trace.Dump{Fingerprint: true})
		runtime.GOMAXPROCS(old)
		var b strings.Builder
		for _, r := range rep.Results {
			fmt.Fprintf(&b, "%s %s %s %s ", r.Name, r.Verdict, r.RefMD5, r.CandMD5)
			fmt.Fprintf(&b, "%v %v %v %v %v\n", r.MaxAbs, r.NormDev, r.TolUnits, r.Outside, r.Ranks)
		}
		outs[i] = b.String()
	}
	if outs[0] != outs[1] {
		t.Fatal("the comparison on fingerprints differs between GOMAXPROCS 1 and 4")
	}
}

// TestFingerprintCorruptFile: a damaged fingerprint on disk is bad input naming the file,
// the tensor and the field.
func TestFingerprintCorruptFile(t *testing.T) {
	p, _ := plan.Parse("tp=2,sp=megatron," + fpSize)
	dir := t.TempDir()
	if _, err := pipeline.Execute(p, nil, pipeline.Simulator{Out: dir, Dump: &trace.Dump{Fingerprint: true}}); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, trace.FileName(1))
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Bump a hash digit: the JSON stays valid, the hash no longer hex.
	i := strings.Index(string(b), `\"hash\":\"`)
	if i < 0 {
		t.Fatal("no fingerprint hash in the file")
	}
	b[i+len(`\"hash\":\"`)] = 'z'
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = trace.OpenDir(dir)
	if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "field fingerprint.hash") || !strings.Contains(err.Error(), "tensor ") {
		t.Fatalf("got %v", err)
	}
}

func names(rs []*verify.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

func equalInts(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
