package scenario

import (
	"os"
	"path/filepath"
	"testing"
)

// Golden compares got with the file at path; under -rewrite it writes got there instead
// (creating the directory). A mismatch reports a line diff.
func Golden(t testing.TB, path string, got []byte) {
	t.Helper()
	if *rewrite {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -rewrite creates it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file (go test -rewrite regenerates it; review with git diff):\n%s",
			path, Diff(string(want), string(got)))
	}
}
