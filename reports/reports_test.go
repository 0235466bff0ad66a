package reports_test

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/serving"
	"github.com/spcheck/spcheck/verify"
	"github.com/spcheck/spcheck/verify/verifytest"
)

var extensions = map[reports.Format]string{reports.FormatText: "txt", reports.FormatMarkdown: "md", reports.FormatJSON: "json", reports.FormatJUnit: "xml", reports.FormatHTML: "html"}

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

// TestServingGolden: the gate table of FastDeploy #7172 and the report of a decode loop whose
// launches are under-predicted, as the terminal shows them.
func TestServingGolden(t *testing.T) {
	tab, err := serving.CompareGates(serving.GateExample())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := reports.GateTable(&b, tab); err != nil {
		t.Fatal(err)
	}
	golden(t, "serving-gate-table.txt", b.Bytes())

	cfg := serving.PredictionExample()
	cfg.Predict = serving.PredictCurrentStep
	rep, err := serving.Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b.Reset()
	if err := reports.Serving(&b, rep); err != nil {
		t.Fatal(err)
	}
	golden(t, "serving-prediction-current-step.txt", b.Bytes())
	if want := "LaunchPrediction  FAIL: step 2 DP0: predicted 14, actual 16 (under by 2, drops D:2)"; !strings.Contains(b.String(), want) {
		t.Errorf("the serving report does not name the under-predicted step: lacks %q", want)
	}
}
