package reports_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/verify"
	"github.com/spcheck/spcheck/verify/verifytest"
)

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

// golden compares got with testdata/name, or rewrites it under -rewrite.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	scenario.Golden(t, filepath.Join("testdata", name), got)
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
