package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/trace"
)

// TestPlanCommand: the summary, one rank's ops, and --emit, whose directory holds every
// rank's program and an inspectable init trace.
func TestPlanCommand(t *testing.T) {
	dir := t.TempDir()
	var out, errb bytes.Buffer
	code := run([]string{"plan", "--plan", "tp=2,pp=2,sp=megatron,microbatches=2", "--emit", dir}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, want := range []string{"--plan 'tp=2,pp=2,dp=1,sp=megatron", "world 4 = dp 1 × pp 2 × tp 2", "collectives", "wrote 4 programs"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("plan output lacks %q:\n%s", want, out.String())
		}
	}
	for r := 0; r < 4; r++ {
		if _, err := os.Stat(filepath.Join(dir, "programs", "rank-0000"+string(rune('0'+r))+".json")); err != nil {
			t.Error(err)
		}
	}
	tr, err := trace.OpenDir(filepath.Join(dir, "init"))
	if err != nil {
		t.Fatal(err)
	}
	tr.Close()
	out.Reset()
	if code := run([]string{"plan", "--tp", "2", "--rank", "1"}, &out, &errb); code != exitOK || !strings.Contains(out.String(), "all_reduce(sum) tp[0 1]") {
		t.Errorf("--rank 1: exit %d, output lacks its TP all-reduces:\n%s", code, out.String())
	}
	var o, e bytes.Buffer
	if code := run([]string{"plan", "--tp", "2", "--rank", "2"}, &o, &e); code != exitBadInput || !strings.Contains(e.String(), "the world has 2 ranks") {
		t.Errorf("--rank past the world: exit %d, stderr %q", code, e.String())
	}
}

// TestRunCommand writes a trace that 'spcheck compare' verifies against 'spcheck oracle'.
func TestRunCommand(t *testing.T) {
	dir := t.TempDir()
	cand, ref := filepath.Join(dir, "sim"), filepath.Join(dir, "ref")
	plan := "tp=2,pp=2,dp=2,sp=vllm,batch=4,microbatches=2,packed=3:5"
	for _, args := range [][]string{{"run", "--plan", plan, "--out", cand}, {"oracle", "--plan", plan, "--out", ref}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != exitOK {
			t.Fatalf("%v: exit %d: %s", args, code, errb.String())
		}
		if !strings.Contains(out.String(), "loss/total") {
			t.Errorf("%v: output lacks the losses:\n%s", args, out.String())
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"compare", ref, cand}, &out, &errb); code != exitOK {
		t.Errorf("compare: exit %d\n%s%s", code, out.String(), errb.String())
	}
	var o, e bytes.Buffer
	if code := run([]string{"run", "--tp", "2"}, &o, &e); code != exitBadInput || !strings.Contains(e.String(), "--out DIR is required") {
		t.Errorf("no --out: exit %d, stderr %q", code, e.String())
	}
}

// TestVerifyCommand: exit 0 with the plan printed back; exit 2 for an invalid plan.
func TestVerifyCommand(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"verify", "--plan", "tp=3,heads=3,hidden=12,ffn=24,seq=7,vocab=19,pp=2,partial_p2p=true"}, &out, &errb)
	if code != exitOK {
		t.Fatalf("exit %d:\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"--plan 'tp=3,pp=2,dp=1,sp=off,partial_p2p=true", "VERIFIED"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("verify output lacks %q:\n%s", want, out.String())
		}
	}
	for _, tc := range scenario.Cases(t, []struct {
		reason string
		args   []string
		want   string
	}{
		{"heads not divisible by tp", []string{"verify", "--plan", "tp=3"}, "heads must be a multiple of tp"},
		{"an unknown bug variant", []string{"verify", "--bug", "no-such-bug"}, `names bug variant "no-such-bug"`},
		{"an unknown format", []string{"verify", "--format", "pdf"}, `invalid value "pdf" for flag -format: unknown format "pdf"`},
	}) {
		var o, e bytes.Buffer
		if code := run(tc.args, &o, &e); code != exitBadInput || !strings.Contains(e.String(), tc.want) {
			t.Errorf("%s: exit %d, stderr %q; want exit %d mentioning %q", tc.reason, code, e.String(), exitBadInput, tc.want)
		}
	}
}
