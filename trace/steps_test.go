package trace

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/tensor"
)

// writeStepFile writes a one-tensor rank-0 file into dir, recording step in Extra when ≥ 0.
func writeStepFile(t *testing.T, dir string, step int) {
	t.Helper()
	must(t, os.MkdirAll(dir, 0o755))
	m := Meta{World: 1}
	if step >= 0 {
		m.Extra = map[string]string{StepKey: strconv.Itoa(step)}
	}
	w := NewWriter(m)
	must(t, w.Add("x", TensorMeta{Name: "act/x", Kind: Activation}, tensor.F64, tensor.New(1)))
	b, err := w.Bytes()
	must(t, err)
	must(t, os.WriteFile(filepath.Join(dir, FileName(0)), b, 0o644))
}

func TestStepDir(t *testing.T) {
	root := t.TempDir()
	multi := filepath.Join(root, "multi")
	writeStepFile(t, filepath.Join(multi, "step-000000"), 0)
	writeStepFile(t, filepath.Join(multi, "step-000002"), 2)
	one := filepath.Join(root, "one")
	writeStepFile(t, filepath.Join(one, "step-000005"), 5)
	flat := filepath.Join(root, "flat")
	writeStepFile(t, flat, 3)
	cases := []struct {
		dir    string
		step   int
		want   string // the directory, or "error: substring"
		reason string
	}{
		{multi, 2, filepath.Join(multi, "step-000002"), "a step of a multi-step dump"},
		{multi, 1, "error: the dump holds steps 0, 2", "a step the dump lacks"},
		{multi, -1, "error: choose one with --step N", "several steps and none chosen"},
		{one, -1, filepath.Join(one, "step-000005"), "the only step when none is chosen"},
		{flat, -1, flat, "a one-step dump"},
		{flat, 3, flat, "a one-step dump of the step asked for"},
		{flat, 4, "error: holds step 3, not step 4", "a one-step dump of another step"},
		{filepath.Join(root, "nope"), 0, "error: ", "a missing directory"},
	}
	for _, c := range scenario.Cases(t, cases) {
		got, err := StepDir(c.dir, c.step)
		if want, isErr := strings.CutPrefix(c.want, "error: "); isErr {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: got %q, %v; want an error with %q", c.reason, got, err, want)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("%s: got %q, %v; want %q", c.reason, got, err, c.want)
		}
	}
}
