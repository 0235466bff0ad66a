package reports_test

import (
	"bytes"
	"encoding/xml"
	"strings"
	"sync"
	"testing"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/reports"
)

var (
	gateOnce sync.Once
	gateRep  *bugs.GateReport
)

// sharedGate runs the gate once for the rendering tests.
func sharedGate() *bugs.GateReport {
	gateOnce.Do(func() { gateRep = bugs.Gate() })
	return gateRep
}

// TestGateGolden: the Markdown and JSON reports CI publishes depend only on the outcomes (no
// timings), so they are golden.
func TestGateGolden(t *testing.T) {
	g := *sharedGate()
	// A correct run's identical/close split depends on the float code the compiler emits
	// (FMA fusion on GOAMD64=v3 and arm64); everything else in the report does not.
	g.Cases = append([]bugs.Case(nil), g.Cases...)
	for i := range g.Cases {
		if k := g.Cases[i].Kind; k == bugs.CaseCorrect || (k == bugs.CaseFixed && g.Cases[i].Plan != "") {
			g.Cases[i].Detail = "(tensor counts)"
		}
	}
	for _, f := range scenario.Cases(t, []struct {
		format reports.Format
		file   string
		reason string
	}{
		{reports.FormatMarkdown, "gate.md", "the job summary CI publishes"},
		{reports.FormatJSON, "gate.json", "what tools read"},
	}) {
		var b bytes.Buffer
		if err := reports.Gate(&b, &g, f.format); err != nil {
			t.Fatal(err)
		}
		golden(t, f.file, b.Bytes())
	}
}

// TestGateJUnit: one suite per case kind, one case per check, failures with their reason and the
// command that reproduces them.
func TestGateJUnit(t *testing.T) {
	g := *sharedGate()
	g.Cases = append([]bugs.Case(nil), g.Cases...)
	g.Cases[0].Pass, g.Cases[0].Problems = false, []string{"does not verify: 3 tensors fail"} // a failing case, to render
	var b bytes.Buffer
	if err := reports.Gate(&b, &g, reports.FormatJUnit); err != nil {
		t.Fatal(err)
	}
	var doc reports.JUnitSuites
	if err := xml.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatalf("not XML: %v", err)
	}
	if doc.Tests != len(g.Cases) || doc.Failures != 1 || len(doc.Suites) != 4 {
		t.Errorf("tests %d failures %d suites %d, want %d 1 4", doc.Tests, doc.Failures, len(doc.Suites), len(g.Cases))
	}
	f := doc.Suites[0].Cases[0].Failure
	if f == nil || f.Message != "does not verify: 3 tensors fail" || !strings.Contains(f.Body, "reproduce: spcheck verify --plan") {
		t.Errorf("failure %+v", f)
	}
	var text bytes.Buffer
	if err := reports.Gate(&text, &g, reports.FormatText); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"spcheck check: FAILED", "failures:", "reproduce: spcheck verify --plan"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	if err := reports.Gate(&text, &g, reports.FormatHTML); err == nil {
		t.Error("an unknown format is accepted")
	}
}
