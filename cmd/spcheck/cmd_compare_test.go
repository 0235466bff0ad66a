package main

import (
	"bytes"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/verify/verifytest"
)

// writeScenario writes a scenario's traces under dir and returns their directories.
func writeScenario(t *testing.T, dir string, s verifytest.Scenario) (ref, cand string) {
	t.Helper()
	ref, cand = filepath.Join(dir, "ref"), filepath.Join(dir, "cand")
	if err := s.Ref.WriteDir(ref); err != nil {
		t.Fatal(err)
	}
	if err := s.Cand.WriteDir(cand); err != nil {
		t.Fatal(err)
	}
	return ref, cand
}

// TestCompareExitCodes: 0 verified, 1 failed, 2 bad input, with the messages a user needs.
func TestCompareExitCodes(t *testing.T) {
	cases := []struct {
		name     string
		reason   string
		scenario verifytest.Scenario
		args     func(ref, cand string) []string
		prepare  func(t *testing.T, ref, cand string)
		code     int
		stdout   []string
		stderr   []string
	}{
		{name: "clean", reason: "a correct run verifies", scenario: verifytest.Clean(),
			args: func(r, c string) []string { return []string{r, c} }, code: exitOK, stdout: []string{"VERIFIED"}},
		{name: "seed001", reason: "seed 001: lost values, flags after the positionals, seed-001 layout", scenario: verifytest.Seed001("develop"),
			args: func(r, c string) []string { return []string{r, c, "--seed001-layout"} }, code: exitFailed,
			stdout: []string{"first divergence: agrad/layers.1.output", "lost: r0.b1 (rank 0, tp=0) [100 120 140 160]; r1.b0 (rank 1, tp=1) [180 200 220 240]",
				"[260,280,300,320, 20,40,60,80]", "reproduce:", "--seed001-layout", "plan 'tp=2,pp=2,sp=megatron,partial_p2p=true', seed 589"}},
		{name: "missing rank", reason: "a rank file is missing", scenario: verifytest.Seed002(),
			args:    func(r, c string) []string { return []string{r, c} },
			prepare: func(t *testing.T, r, c string) { os.Remove(filepath.Join(c, "rank-00001.safetensors")) },
			code:    exitBadInput, stderr: []string{"spcheck compare:", "cand", "no file for rank(s) [1]"}},
		{name: "bad tol", reason: "a tolerance that is not a number", scenario: verifytest.Clean(),
			args: func(r, c string) []string { return []string{"--tol", "tight", r, c} }, code: exitBadInput, stderr: []string{"--tol"}},
		{name: "calibrate needs the oracle", reason: "--tol calibrate recomputes the reference, which only an oracle trace allows", scenario: renamed(),
			args: func(r, c string) []string { return []string{r, c, "--tol", "calibrate"} }, code: exitBadInput, stderr: []string{"must be an oracle trace"}},
		{name: "loose tol", reason: "--tol 0.5 is loose, but a ×2 gradient still fails and is named", scenario: verifytest.ScaledTP(),
			args: func(r, c string) []string { return []string{r, c, "--tol", "0.5"} }, code: exitFailed, stdout: []string{"×2 (tp)"}},
		{name: "one arg", reason: "usage error", scenario: verifytest.Clean(),
			args: func(r, c string) []string { return []string{r} }, code: exitBadInput, stderr: []string{"Usage: spcheck compare"}},
		{name: "rename", reason: "rename rules map a framework's names onto the reference's", scenario: renamed(),
			args: func(r, c string) []string {
				rules := filepath.Join(filepath.Dir(r), "rules")
				os.WriteFile(rules, []byte("# stage-local index\n@tp=1 ^fw\\.layer(\\d+)$ => act/layers.${1+1}.out\n^fw\\.layer(\\d+)$ => act/layers.${1}.out\n"), 0o644)
				return []string{"--rename", rules, r, c}
			}, code: exitOK, stdout: []string{"VERIFIED"}},
		{name: "step", reason: "--step picks one step of a multi-step dump (spcheck_dump's step-NNNNNN layout): step 1 agrees, step 0 would not", scenario: verifytest.Seed001("develop"),
			args: func(r, c string) []string { return []string{r, c, "--step", "1"} }, prepare: intoSteps,
			code: exitOK, stdout: []string{"VERIFIED"}},
		{name: "step unchosen", reason: "several steps and no --step is bad input naming the steps", scenario: verifytest.Clean(),
			args: func(r, c string) []string { return []string{r, c} }, prepare: intoSteps,
			code: exitBadInput, stderr: []string{"the dump holds steps 0, 1: choose one with --step N"}},
		{name: "filter", reason: "--filter keeps only matching tensors: the seed-001 run's parameters agree", scenario: verifytest.Seed001("develop"),
			args: func(r, c string) []string { return []string{r, c, "--filter", "^param/"} }, code: exitOK, stdout: []string{"VERIFIED"}},
		{name: "filter keeps the failure", reason: "a filter matching the diverged gradient still fails on it", scenario: verifytest.Seed001("develop"),
			args: func(r, c string) []string { return []string{r, c, "--filter", "^agrad/"} }, code: exitFailed, stdout: []string{"first divergence: agrad/layers.1.output"}},
		{name: "bad filter", reason: "a filter that is not a regular expression", scenario: verifytest.Clean(),
			args: func(r, c string) []string { return []string{r, c, "--filter", "("} }, code: exitBadInput, stderr: []string{"--filter"}},
	}
	for _, c := range scenario.Cases(t, cases) {
		t.Run(c.name, func(t *testing.T) {
			ref, cand := writeScenario(t, t.TempDir(), c.scenario)
			if c.prepare != nil {
				c.prepare(t, ref, cand)
			}
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"compare"}, c.args(ref, cand)...), &stdout, &stderr)
			if code != c.code {
				t.Fatalf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", c.reason, code, c.code, &stdout, &stderr)
			}
			for _, s := range c.stdout {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("%s: stdout lacks %q:\n%s", c.reason, s, &stdout)
				}
			}
			for _, s := range c.stderr {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("%s: stderr lacks %q:\n%s", c.reason, s, &stderr)
				}
			}
		})
	}
}

// intoSteps turns the candidate into a two-step dump: step 0 the candidate itself, step 1 a
// copy of the reference (so the two steps compare differently).
func intoSteps(t *testing.T, ref, cand string) {
	t.Helper()
	step0 := filepath.Join(cand, "step-000000")
	if err := os.MkdirAll(step0, 0o755); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(cand, "*.safetensors"))
	for _, f := range files {
		if err := os.Rename(f, filepath.Join(step0, filepath.Base(f))); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(cand, "step-000001"), os.DirFS(ref)); err != nil {
		t.Fatal(err)
	}
}

// TestCompareCalibrated: an oracle reference and a simulated candidate verify under
// calibrated tolerances, and the calibration is reported.
func TestCompareCalibrated(t *testing.T) {
	dir := t.TempDir()
	ref, cand := filepath.Join(dir, "ref"), filepath.Join(dir, "cand")
	var out, errb bytes.Buffer
	if code := run([]string{"oracle", "--plan", "tp=2,pp=2,sp=vllm", "--out", ref}, &out, &errb); code != exitOK {
		t.Fatalf("oracle: %d %s", code, &errb)
	}
	if code := run([]string{"run", "--plan", "tp=2,pp=2,sp=vllm", "--out", cand}, &out, &errb); code != exitOK {
		t.Fatalf("run: %d %s", code, &errb)
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"compare", ref, cand, "--tol", "calibrate"}, &out, &errb); code != exitOK {
		t.Fatalf("compare --tol calibrate: exit %d\n%s\n%s", code, &out, &errb)
	}
	if !strings.Contains(errb.String(), "calibrated float64 tolerances from 4 recomputations") {
		t.Fatalf("calibration not reported: %s", &errb)
	}
}

// renamed is a candidate whose tensors carry framework names with stage-local indices.
func renamed() verifytest.Scenario {
	s := verifytest.Clean()
	ref := verifytest.Single("ref", verifytest.Provenance{})
	cand := verifytest.TP("cand", 2, verifytest.Provenance{})
	for i := 0; i < 2; i++ {
		name := "act/layers." + string(rune('0'+i)) + ".out"
		ref.Add(0, "x"+name, verifytest.Meta(name, "activation", i, ""), 2, []int{1}, float64(i))
		cand.Add(i, "x", verifytest.Meta("fw.layer0", "activation", i, "tp=stage"), 2, []int{1}, float64(i))
	}
	s.Ref, s.Cand = ref, cand
	return s
}

// TestCompareWritesJUnitFile: --format junit --out writes parseable XML and a verdict line.
func TestCompareWritesJUnitFile(t *testing.T) {
	dir := t.TempDir()
	ref, cand := writeScenario(t, dir, verifytest.ReplicaSplit())
	out := filepath.Join(dir, "report.xml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"compare", "--format", "junit", "--out", out, ref, cand}, &stdout, &stderr); code != exitFailed {
		t.Fatalf("exit %d, stderr %s", code, &stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Failures int `xml:"failures,attr"`
	}
	if err := xml.Unmarshal(b, &doc); err != nil || doc.Failures != 2 {
		t.Errorf("report.xml: %v, failures %d, want 2", err, doc.Failures)
	}
	if !strings.Contains(stdout.String(), "FAILED; report in") || !strings.Contains(stdout.String(), "reproduce: spcheck compare --format junit") {
		t.Errorf("stdout: %s", &stdout)
	}
}

// TestDiffCommand: the A/B diff exits 1 and prints the seed-001 symptom line.
func TestDiffCommand(t *testing.T) {
	dir := t.TempDir()
	a, b := writeScenario(t, dir, verifytest.Seed001("develop"))
	u := filepath.Join(dir, "unify")
	if err := verifytest.Seed001("unify").Cand.WriteDir(u); err != nil {
		t.Fatal(err)
	}
	_ = a
	var stdout, stderr bytes.Buffer
	code := run([]string{"diff", b, u}, &stdout, &stderr)
	if code != exitFailed || !strings.Contains(stdout.String(), "loss identical, the gradient MD5 differs") {
		t.Errorf("exit %d:\n%s%s", code, &stdout, &stderr)
	}
	stdout.Reset()
	if code := run([]string{"diff", b, b, "--kinds", "loss"}, &stdout, &stderr); code != exitOK {
		t.Errorf("a trace against itself: exit %d\n%s", code, &stdout)
	}
	if code := run([]string{"diff", b, u, "--kinds", "weights"}, &stdout, &stderr); code != exitBadInput {
		t.Errorf("unknown kind: exit %d", code)
	}
}
