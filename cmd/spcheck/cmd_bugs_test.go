package main

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/internal/scenario"
)

// TestCheckCommand is `spcheck check`, the CI gate, end to end: exit 0 with every case
// passing, and the JUnit file CI publishes.
func TestCheckCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"check"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s\n%s", code, errb.String(), out.String())
	}
	if !strings.Contains(out.String(), "spcheck check: PASSED") || strings.Contains(out.String(), "FAIL") {
		t.Errorf("output:\n%s", out.String())
	}
	path := filepath.Join(t.TempDir(), "check.xml")
	out.Reset()
	if code := run([]string{"check", "--format", "junit", "--out", path}, &out, &errb); code != exitOK {
		t.Fatalf("junit: exit %d: %s", code, errb.String())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests    int `xml:"tests,attr"`
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil || doc.Tests < 2*len(bugs.All()) || doc.Failures != 0 {
		t.Errorf("junit: %v, %d tests, %d failures", err, doc.Tests, doc.Failures)
	}
	if !strings.Contains(out.String(), "report in "+path) {
		t.Errorf("stdout %q", out.String())
	}
	if code := run([]string{"check", "--format", "pdf"}, &out, &errb); code != exitBadInput {
		t.Errorf("--format pdf: exit %d", code)
	}
}

// TestBugsCommand lists every catalogue entry with its class and source.
func TestBugsCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"bugs", "-v"}, &out, &errb); code != exitOK {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	for _, b := range bugs.All() {
		if !strings.Contains(out.String(), b.Name+" ") || !strings.Contains(out.String(), b.Source) {
			t.Errorf("bugs lacks %s or its source", b.Name)
		}
	}
	if !strings.Contains(out.String(), "plan:  tp=2,pp=2,sp=megatron,partial_p2p=true,mtp=0") {
		t.Errorf("-v lacks the minimal plans:\n%s", out.String())
	}
}

// TestReproCommand: a bug on its minimal plan (exit 1, the document's numbers, the block table,
// the grad MD5s, the command), on a plan changed by a flag, its fixed form (exit 0), a serving
// bug, a worked example, and bad input (exit 2).
func TestReproCommand(t *testing.T) {
	cases := []struct {
		reason string
		args   []string
		code   int
		want   []string
	}{
		{"seed 002 on its minimal plan", []string{"repro", "vllm-residual-slice-offset0"}, exitFailed, []string{
			"[[155 -34] [200 -50]]", "first divergence: act/layers.1.attn_residual", "block diagnosis", "gradient MD5s",
			"diagnosis matches the catalogue's", "re-run: spcheck repro vllm-residual-slice-offset0 --plan '"}},
		{"seed 001: the document's layout", []string{"repro", "partial-p2p-under-sp"}, exitFailed, []string{
			"seed-001 layout:", "丢失: [100,120,140,160] [180,200,220,240]", "all 2 pieces hold identical data"}},
		{"a flag changes the minimal plan", []string{"repro", "mtp-eh-proj-reduce-scatter", "--tp", "4", "--heads", "4"}, exitFailed, []string{
			"×4 (tp)", "tp=4,pp=1", "another one"}},
		{"the fixed form verifies", []string{"repro", "vllm-residual-slice-offset0", "--fixed"}, exitOK, []string{"VERIFIED"}},
		{"a run the simulator refuses, named", []string{"repro", "vllm-pp-residual-not-gathered"}, exitFailed, []string{
			"cannot compute act/layers.0.output, the input of act/layers.1.attn_norm"}},
		{"a serving bug", []string{"repro", "serving.predict-current-step"}, exitFailed, []string{
			"predicted 14, actual 16", "| ok | new: next_real_bsz*4"}},
		{"a worked example", []string{"repro", "vllm24021"}, exitOK, []string{"[[111 -78] [0 0]]", "re-run: spcheck repro vllm24021"}},
		{"an unknown bug", []string{"repro", "no-such-bug"}, exitBadInput, []string{"known: "}},
		{"no name", []string{"repro", "--tp", "2"}, exitBadInput, []string{"name a bug"}},
		{"a plan naming another bug", []string{"repro", "sp-norm-grad-avg", "--bug", "sp-norm-grad-not-reduced"}, exitBadInput, []string{"drop the bug key"}},
	}
	for _, c := range scenario.Cases(t, cases) {
		var out, errb bytes.Buffer
		code := run(c.args, &out, &errb)
		all := out.String() + errb.String()
		if code != c.code {
			t.Errorf("%s: exit %d, want %d\n%s", c.reason, code, c.code, all)
			continue
		}
		for _, w := range c.want {
			if !strings.Contains(all, strings.ReplaceAll(w, "| ok |", "│ ok │")) {
				t.Errorf("%s: output lacks %q", c.reason, w)
			}
		}
	}
}
