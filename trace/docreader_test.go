package trace

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocumentedPythonReader runs the 20-line Python reader of docs/trace-format.md (json and
// struct only) on a written trace, so the documented recipe can never drift from the format.
func TestDocumentedPythonReader(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("no python3")
	}
	doc, err := os.ReadFile("../docs/trace-format.md")
	must(t, err)
	_, rest, ok := strings.Cut(string(doc), "## Reading a trace in 20 lines of Python\n\n```python\n")
	code, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("docs/trace-format.md lost its Python reader section")
	}
	dir := t.TempDir()
	for rank := 0; rank < 2; rank++ {
		must(t, os.WriteFile(filepath.Join(dir, FileName(rank)), sampleFile(t, rank), 0o644))
	}
	code = strings.Replace(code, `"t/*.safetensors"`, `"`+dir+`/*.safetensors"`, 1)
	out, err := exec.Command("python3", "-c", code+"\nprint(read_rank(path)[1]['w'][2])\n").CombinedOutput()
	if err != nil {
		t.Fatalf("documented reader failed: %v\n%s", err, out)
	}
	if got := string(out); !strings.Contains(got, "rank-00001.safetensors 1 2 2") || !strings.Contains(got, "[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]") {
		t.Fatalf("documented reader printed:\n%s", got)
	}
}
