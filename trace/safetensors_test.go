package trace

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/spcheck/spcheck/internal/testenv"
	"github.com/spcheck/spcheck/tensor"
)

// TestRealSafetensorsReadsOurFiles loads a written trace with the real safetensors package
// (PyPI) and checks it gets the same bytes, dtypes, shapes and metadata. It needs python3 with
// safetensors and numpy; it is skipped without them unless SPCHECK_REQUIRE_PYTHON=1 (CI).
func TestRealSafetensorsReadsOurFiles(t *testing.T) {
	testenv.Need(t, "PYTHON", testenv.PythonModules("python3", "pip install safetensors numpy", "safetensors", "numpy"))
	w := NewWriter(Meta{World: 1, Producer: "test", Plan: "hidden=16"})
	x := tensor.NewRNG(3, "x").NormalTensor(1, 3, 5)
	expected := map[string]any{}
	for i, d := range []tensor.DType{tensor.F64, tensor.F32, tensor.BF16, tensor.F16, tensor.I64, tensor.I32} {
		key := "x_" + d.String()
		v := x
		if !d.IsFloat() {
			v = x.Scale(100)
		}
		must(t, w.Add(key, TensorMeta{Name: "act/" + key, Kind: Activation, Order: i}, d, v))
		expected[key] = map[string]any{"dtype": d.String(), "shape": v.Shape, "md5": tensor.MD5(d, v)}
	}
	must(t, w.Add("scalar", TensorMeta{Name: "loss/main", Kind: Loss, Order: 9}, tensor.F64, tensor.Scalar(1.5)))
	expected["scalar"] = map[string]any{"dtype": "F64", "shape": []int{}, "md5": tensor.MD5(tensor.F64, tensor.Scalar(1.5))}
	expected["__spcheck__"] = w.meta
	dir := t.TempDir()
	path, err := w.WriteDir(dir)
	must(t, err)
	exp, _ := json.Marshal(expected)
	expPath := filepath.Join(dir, "expected.json")
	must(t, os.WriteFile(expPath, exp, 0o644))
	out, err := exec.Command("python3", "testdata/check_safetensors.py", path, expPath).CombinedOutput()
	if err != nil {
		t.Fatalf("real safetensors disagrees: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
