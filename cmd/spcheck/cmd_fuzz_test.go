package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestFuzzCommandExitCodes: 0 when every property held, 1 with a counterexample (seed,
// shrunk plan, diagnosis, command), 2 on bad usage.
func TestFuzzCommandExitCodes(t *testing.T) {
	code, out, errs := runCmd("fuzz", "--count", "10", "--seed", "3", "--space", "mesh2")
	if code != exitOK || !strings.Contains(out, "every property held") {
		t.Fatalf("clean campaign: exit %d\n%s%s", code, out, errs)
	}
	code, out, _ = runCmd("fuzz", "--count", "10", "--seed", "3", "--space", "mesh2", "--bug", "partial-p2p-under-sp")
	for _, want := range []string{"COUNTEREXAMPLE", "seed 3", "shrunk:", "first divergence", "reproduce: spcheck verify --plan 'tp=2,pp=2"} {
		if !strings.Contains(out, want) {
			t.Errorf("detection output lacks %q:\n%s", want, out)
		}
	}
	if code != exitFailed {
		t.Errorf("detection: exit %d, want %d", code, exitFailed)
	}
	for _, args := range [][]string{
		{"fuzz", "--shard", "3/3", "--count", "1"},
		{"fuzz", "--shard", "x", "--count", "1"},
		{"fuzz", "--bug", "no-such-bug", "--count", "1"},
		{"fuzz", "--space", "huge", "--count", "1"},
		{"fuzz", "--dtypes", "i64", "--count", "1"},
		{"fuzz", "--mutation", "--shard", "0/2"},
		{"fuzz", "--merge"},
		{"fuzz", "extra"},
	} {
		if code, _, errs := runCmd(args...); code != exitBadInput || errs == "" {
			t.Errorf("%v: exit %d, stderr %q", args, code, errs)
		}
	}
}

// TestFuzzShardsMerge: array-job shards write summaries that --merge adds up; a missing shard
// is an incomplete campaign (exit 2).
func TestFuzzShardsMerge(t *testing.T) {
	dir := t.TempDir()
	var files []string
	for i := range 2 {
		f := filepath.Join(dir, "shard"+string(rune('0'+i))+".json")
		files = append(files, f)
		if code, out, errs := runCmd("fuzz", "--count", "20", "--seed", "8", "--space", "mesh2", "--shard", string(rune('0'+i))+"/2", "--summary", f); code != exitOK {
			t.Fatalf("shard %d: exit %d\n%s%s", i, code, out, errs)
		}
	}
	code, out, errs := runCmd(append([]string{"fuzz", "--merge"}, files...)...)
	if code != exitOK || !strings.Contains(out, "shards [0 1] of 2: 16 equivalence, 2 algebra, 2 serving") {
		t.Errorf("merge: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runCmd("fuzz", "--merge", files[0]); code != exitBadInput || !strings.Contains(errs, "shard(s) [1]") {
		t.Errorf("one shard of two: exit %d, stderr %q", code, errs)
	}
	bad := filepath.Join(dir, "bad.json")
	os.WriteFile(bad, []byte(`{"seed": 1}`), 0o644)
	if code, _, errs := runCmd("fuzz", "--merge", bad); code != exitBadInput || !strings.Contains(errs, "bad.json") {
		t.Errorf("not a summary: exit %d, stderr %q", code, errs)
	}
}

func TestFuzzMutationTable(t *testing.T) {
	code, out, errs := runCmd("fuzz", "--mutation", "--seed", "2", "--budget", "20s", "--space", "mesh2",
		"--bug", "partial-p2p-under-sp,serving.gate-old")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, want := range []string{"time to detect", "shrink steps", "partial-p2p-under-sp", "tp=2,pp=2,sp=megatron,partial_p2p=true", "serving.gate-old", "mutation score: 2/2"} {
		if !strings.Contains(out, want) {
			t.Errorf("mutation output lacks %q:\n%s", want, out)
		}
	}
}
