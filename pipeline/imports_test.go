package pipeline

import (
	"go/build"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
)

const module = "github.com/spcheck/spcheck"

// moduleImports maps every package of the module to its non-test imports.
func moduleImports(t *testing.T) map[string][]string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod above the pipeline package: %v", err)
	}
	out := map[string][]string{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "python") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if err != nil {
			return nil // no Go files here
		}
		rel, _ := filepath.Rel(root, path)
		out[filepath.ToSlash(filepath.Join(module, rel))] = pkg.Imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// reaches reports whether from imports to, directly or through other module packages.
func reaches(imports map[string][]string, from, to string) bool {
	seen := map[string]bool{}
	var walk func(p string) bool
	walk = func(p string) bool {
		if seen[p] {
			return false
		}
		seen[p] = true
		for _, q := range imports[p] {
			if q == to || (strings.HasPrefix(q, module+"/") && walk(q)) {
				return true
			}
		}
		return false
	}
	return walk(from)
}

// TestImportFacts holds the spine's layering: the simulator knows nothing of the verifier (it
// produces traces; package pipeline compares them), the verifier works on traces alone (axis
// names come from a trace's mesh, not from spcheck's plan type), test harnesses (…test
// packages) are imported by tests only, and tables are drawn only by package reports.
func TestImportFacts(t *testing.T) {
	imports := moduleImports(t)
	if len(imports) < 10 {
		t.Fatalf("found only %d packages: the walk is broken", len(imports))
	}
	for _, c := range scenario.Cases(t, []struct{ from, to, reason string }{
		{"simulate", "verify", "the simulator produces traces; comparing them is package pipeline's"},
		{"simulate", "oracle", "the simulator and the oracle start from the same data (package model), not from each other"},
		{"verify", "plan", "verify serves users' own framework dumps: it reads axis names and quantities from the trace"},
		{"verify", "simulate", "verify works on traces alone"},
	}) {
		if reaches(imports, module+"/"+c.from, module+"/"+c.to) {
			t.Errorf("%s imports %s: %s", c.from, c.to, c.reason)
		}
	}
	for _, pkg := range slices.Sorted(maps.Keys(imports)) {
		for _, q := range imports[pkg] {
			if strings.HasPrefix(q, module+"/") && strings.HasSuffix(q, "test") && !strings.HasSuffix(pkg, "test") {
				t.Errorf("%s imports the test harness %s (harnesses are for tests only)", pkg, q)
			}
			if strings.HasPrefix(q, "github.com/olekukonko/tablewriter") && pkg != module+"/reports" {
				t.Errorf("%s imports %s: rendering lives in package reports", pkg, q)
			}
		}
	}
}
