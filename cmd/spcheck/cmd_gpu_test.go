package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
)

// fakeExecutor writes a shell script standing in for cuda/build/spexec: it checks that it was
// given an emitted plan and copies the trace files of src into its --out directory (or fails).
func fakeExecutor(t *testing.T, src string, exitCode int) string {
	t.Helper()
	script := `#!/bin/sh
while [ $# -gt 0 ]; do
  case "$1" in
    --emit) emit="$2"; shift 2;;
    --out) out="$2"; shift 2;;
    *) shift;;
  esac
done
[ -f "$emit/programs/rank-00000.json" ] || { echo "no programs in $emit" >&2; exit 2; }
[ -f "$emit/init/rank-00000.safetensors" ] || { echo "no init in $emit" >&2; exit 2; }
if [ ` + map[bool]string{true: "1", false: "0"}[exitCode != 0] + ` = 1 ]; then echo "rank 1 FAILED: op #5 all_reduce did not complete" >&2; exit 1; fi
mkdir -p "$out" && cp "` + src + `"/*.safetensors "$out"/
`
	path := filepath.Join(t.TempDir(), "spexec")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGPUCommand(t *testing.T) {
	const planStr = "tp=2,sp=megatron,mtp=0,layers=1,dtype=fp32"
	// The simulator's trace stands in for the GPUs' (the same programs, in float64).
	src := t.TempDir()
	if code := run([]string{"run", "--plan", planStr, "--out", src}, &bytes.Buffer{}, &bytes.Buffer{}); code != exitOK {
		t.Fatalf("spcheck run: exit %d", code)
	}

	for _, tc := range scenario.Cases(t, []struct {
		reason   string
		args     []string
		wantCode int
		want     string
	}{
		{"a run that matches the oracle verifies", []string{"--exec", fakeExecutor(t, src, 0)}, exitOK, "spcheck gpu: VERIFIED: 2 ranks"},
		{"an executor failure is a failed verification naming it", []string{"--exec", fakeExecutor(t, src, 1)}, exitFailed, "the executor failed"},
		{"a bad --tol is bad input", []string{"--exec", fakeExecutor(t, src, 0), "--tol", "bogus"}, exitBadInput, ""},
		{"no --work", []string{"--work", "", "--exec", "x"}, exitBadInput, ""},
	}) {
		var out, errb bytes.Buffer
		args := append([]string{"gpu", "--plan", planStr, "--work", t.TempDir()}, tc.args...)
		code := run(args, &out, &errb)
		if code != tc.wantCode || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%s: exit %d (want %d), output:\n%s%s", tc.reason, code, tc.wantCode, out.String(), errb.String())
		}
	}
}

// TestGPUReferenceFlag: with --ref gpu the reference is a second executor run of the plan's
// float64 single-device form (gputraces.ReferencePlan), emitted with its parameters described
// (generate/), and --dump reaches both runs. The stand-in executor hands the simulator's world-1
// float64 trace to the one-rank reference run and the tp=2 trace to the candidate.
func TestGPUReferenceFlag(t *testing.T) {
	const planStr = "tp=2,sp=megatron,mtp=0,layers=1,dtype=fp32"
	cand, ref := t.TempDir(), t.TempDir()
	for _, r := range scenario.Cases(t, []struct{ reason, plan, out string }{
		{"the candidate's trace", planStr, cand},
		{"the reference's: the single-device float64 run", "mtp=0,layers=1,dtype=fp64", ref},
	}) {
		if code := run([]string{"run", "--plan", r.plan, "--out", r.out}, &bytes.Buffer{}, &bytes.Buffer{}); code != exitOK {
			t.Fatalf("spcheck run %s: exit %d", r.plan, code)
		}
	}
	dir := t.TempDir()
	log := filepath.Join(dir, "args.log")
	script := `#!/bin/sh
echo "$@" >> "` + log + `"
while [ $# -gt 0 ]; do
  case "$1" in
    --emit) emit="$2"; shift 2;;
    --out) out="$2"; shift 2;;
    *) shift;;
  esac
done
[ -f "$emit/generate/rank-00000.json" ] || { echo "no generate manifest in $emit" >&2; exit 2; }
src="` + cand + `"
if [ ! -f "$emit/programs/rank-00001.json" ]; then
  grep -q 'tp=1,.*dtype=fp64' "$emit/programs/rank-00000.json" || { echo "the one-rank run is not the float64 reference" >&2; exit 2; }
  src="` + ref + `"
fi
mkdir -p "$out" && cp "$src"/*.safetensors "$out"/
`
	exe := filepath.Join(dir, "spexec")
	if err := os.WriteFile(exe, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range scenario.Cases(t, []struct {
		reason   string
		args     []string
		wantCode int
		want     string
	}{
		{"the GPU float64 reference stands in for the oracle", []string{"--ref", "gpu", "--dump", "loss/*,grad/*"}, exitOK, "VERIFIED: 2 ranks"},
		{"an unknown reference is bad input", []string{"--ref", "cpu"}, exitBadInput, `--ref "cpu": want oracle or gpu`},
	}) {
		var out, errb bytes.Buffer
		args := append([]string{"gpu", "--plan", planStr, "--work", t.TempDir(), "--exec", exe}, tc.args...)
		code := run(args, &out, &errb)
		if code != tc.wantCode || !strings.Contains(out.String()+errb.String(), tc.want) {
			t.Errorf("%s: exit %d (want %d), output:\n%s%s", tc.reason, code, tc.wantCode, out.String(), errb.String())
		}
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if runs := strings.Count(string(b), "--dump loss/* --dump grad/*"); runs != 2 {
		t.Errorf("--dump reached %d executor runs, want 2 (candidate and reference):\n%s", runs, b)
	}
}
