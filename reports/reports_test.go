package reports_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/verify"
	"github.com/spcheck/spcheck/verify/verifytest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

var extensions = map[string]string{"text": "txt", "md": "md", "json": "json", "junit": "xml", "html": "html"}

func report(t *testing.T, s verifytest.Scenario) *verify.Report {
	t.Helper()
	ref, cand, err := s.Traces()
	if err != nil {
		t.Fatal(err)
	}
	rep, err := verify.Compare(ref, cand, verify.Options{Command: "spcheck compare " + s.Ref.Name + " " + s.Cand.Name})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// golden compares got with testdata/name, or rewrites it under -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./reports -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file; run with -update and review the diff.\n--- got:\n%s", path, got)
	}
}

// TestGoldenReports renders every scenario in every format and checks the bytes.
func TestGoldenReports(t *testing.T) {
	for _, s := range verifytest.All() {
		rep := report(t, s)
		for _, f := range reports.Formats {
			var b bytes.Buffer
			if err := reports.Write(&b, rep, f, reports.Options{Seed001: strings.HasPrefix(s.Name, "seed001")}); err != nil {
				t.Fatalf("%s %s: %v", s.Name, f, err)
			}
			golden(t, s.Name+"."+extensions[f], b.Bytes())
		}
	}
}
