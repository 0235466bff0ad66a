package oracle

import (
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/spcheck/spcheck/internal/testenv"
)

// torchPython is Debian's interpreter, which has python3-torch (1.13).
const torchPython = testenv.SystemPython

// TestTorchReference runs oracle/torchref/torchref.py, an independent PyTorch autograd
// implementation, on oracle traces: every loss and parameter gradient must match to its 1e-10
// tolerance, and a trace with one gradient element off by 1e-8 (relative) must fail. Skipped
// when torch is unavailable, unless SPCHECK_REQUIRE_TORCH=1 (CI).
func TestTorchReference(t *testing.T) {
	testenv.NeedTorch(t)
	root := t.TempDir()
	plans := map[string]string{
		"untied-packed-d2": "mtp=2,packed=4:3:5,tied=false",
		"tied-d1":          "mtp=1,seq=6,tied=true",
		"no-mtp":           "mtp=0,packed=2:1:3",
	}
	var dirs []string
	for name, s := range plans {
		dir := filepath.Join(root, name)
		if err := WriteTrace(dir, smallPlan(t, s)); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	// negative control: one gradient element off by 1e-8 relative
	p := smallPlan(t, plans["untied-packed-d2"])
	res, err := Run(p.Model)
	if err != nil {
		t.Fatal(err)
	}
	res.Get("grad/layers.1.attn.k.weight").Data[3] *= 1 + 1e-8
	bad := filepath.Join(root, "corrupted")
	if err := writeResult(bad, p, res, nil); err != nil {
		t.Fatal(err)
	}
	args := append([]string{filepath.Join("torchref", "torchref.py")}, dirs...)
	out, err := exec.Command(torchPython, append(args, bad)...).CombinedOutput()
	text := string(out)
	if exit, ok := err.(*exec.ExitError); !ok || exit.ExitCode() != 1 {
		t.Fatalf("torchref exited with %v, want status 1 (the corrupted trace fails):\n%s", err, text)
	}
	verdict := regexp.MustCompile(`(?m)^(PASS|FAIL) (\S+) max_rel_diff=(\S+)`)
	got := map[string]string{}
	for _, m := range verdict.FindAllStringSubmatch(text, -1) {
		got[m[2]] = m[1]
		t.Logf("%s %s: max relative difference %s", m[1], filepath.Base(m[2]), m[3])
	}
	for _, d := range dirs {
		if got[d] != "PASS" {
			t.Errorf("%s: torchref says %q:\n%s", filepath.Base(d), got[d], text)
		}
	}
	if got[bad] != "FAIL" {
		t.Errorf("the corrupted trace was not caught (%q):\n%s", got[bad], text)
	}
}
