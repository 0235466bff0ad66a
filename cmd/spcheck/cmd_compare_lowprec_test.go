package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/trace"
)

// TestCompareGPUTracesDefault: a plain spcheck compare of the committed correct GPU traces
// against the oracle of their plan verifies (the default tolerance is the noise of the plan's
// single-device run in the trace's dtype), and a recorded bug still fails.
func TestCompareGPUTracesDefault(t *testing.T) {
	for _, c := range scenario.Cases(t, []struct {
		name   string
		code   int
		reason string
	}{
		{"full_tp2pp2_fp32", exitOK, "a correct fp32 run on H200s is within the fp32 noise of its single-device run"},
		{"full_tp2pp2_bf16", exitOK, "a correct bf16 run is within the bf16 noise"},
		{"bug_sp_norm_grad_avg_tp2_fp32", exitFailed, "the default tolerance still catches a real bug (AVG instead of SUM)"},
	}) {
		dir := filepath.Join("..", "..", "testdata", "gpu", c.name)
		tr, err := trace.OpenDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		p := plan.Default()
		if err := p.Apply(tr.Files[0].Meta.Plan); err != nil {
			t.Fatal(err)
		}
		tr.Close()
		p.Bug = ""
		ref := filepath.Join(t.TempDir(), "ref")
		if code, _, errOut := runCmd("oracle", "--plan", p.String(), "--out", ref); code != exitOK {
			t.Fatalf("oracle: %s", errOut)
		}
		code, out, errOut := runCmd("compare", ref, dir)
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s\n%s", c.name, code, c.code, out, errOut)
		}
		if !strings.Contains(errOut, "single-device "+p.DType.String()+" run") {
			t.Errorf("%s: stderr does not say which noise reference it used: %s", c.name, errOut)
		}
	}
}

// TestCompareRef2: with a second correct reference, a correct low-precision candidate verifies
// where the constant tolerance fails it, and a buggy one still fails.
func TestCompareRef2(t *testing.T) {
	dir := t.TempDir()
	run := func(name, planStr string) string {
		out := filepath.Join(dir, name)
		if code, _, errOut := runCmd("run", "--plan", planStr, "--out", out); code != exitOK {
			t.Fatalf("run %s: %s", planStr, errOut)
		}
		return out
	}
	const base = "hidden=32,heads=4,ffn=64,seq=16,dtype=bf16"
	ref := run("ref", base)
	ref2 := run("ref2", base+",tp=2")
	cand := run("cand", base+",tp=4,sp=megatron")
	bug := run("bug", base+",tp=4,sp=megatron,bug=sp-norm-grad-avg")
	if code, _, _ := runCmd("compare", ref, cand); code != exitFailed {
		t.Errorf("the constant tolerance passed a bf16 tp=4 run against a tp=1 run (exit %d): the test no longer shows what --ref2 adds", code)
	}
	if code, out, errOut := runCmd("compare", ref, cand, "--ref2", ref2); code != exitOK {
		t.Errorf("--ref2: a correct candidate failed (exit %d)\n%s\n%s", code, out, errOut)
	}
	if code, _, _ := runCmd("compare", ref, bug, "--ref2", ref2); code != exitFailed {
		t.Errorf("--ref2: a buggy candidate gave exit %d, want %d", code, exitFailed)
	}
	if code, _, errOut := runCmd("compare", ref, cand, "--ref2", filepath.Join(dir, "nope")); code != exitBadInput || !strings.Contains(errOut, "--ref2") {
		t.Errorf("--ref2 of a missing directory: exit %d, %s", code, errOut)
	}
}
