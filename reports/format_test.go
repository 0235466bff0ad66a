package reports_test

import (
	"bytes"
	"flag"
	"io"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/verify/verifytest"
)

func scenarioCases[C any](t *testing.T, cases []C) []C { return scenario.Cases(t, cases) }

func diffLines(want, got string) string { return scenario.Diff(want, got) }

// TestFormats: one list of formats, each document offering its own; a bad --format is a flag
// error before any work, naming what is accepted.
func TestFormats(t *testing.T) {
	for _, c := range scenarioCases(t, []struct {
		in      string
		allowed []reports.Format
		want    reports.Format
		err     string
		reason  string
	}{
		{"md", reports.ReportFormats, reports.FormatMarkdown, "", "a listed format"},
		{"markdown", reports.DiffFormats, reports.FormatMarkdown, "", "markdown is read as md"},
		{"html", reports.DiffFormats, "", `unknown format "html" (want one of text, md, json)`, "a diff has no HTML form"},
		{"", reports.Formats, "", `unknown format "" (want one of text, md, json, junit, html)`, "an empty --format is a mistake, not text"},
	}) {
		got, err := reports.ParseFormat(c.in, c.allowed)
		if got != c.want || (err == nil) != (c.err == "") || (err != nil && err.Error() != c.err) {
			t.Errorf("%s: ParseFormat(%q) = %q, %v; want %q, %s", c.reason, c.in, got, err, c.want, c.err)
		}
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	f := reports.FormatFlag(fs, reports.GateFormats)
	if *f != reports.FormatText {
		t.Errorf("default %q, want text", *f)
	}
	if err := fs.Parse([]string{"--format", "html"}); err == nil {
		t.Error("--format html parsed for a document without HTML")
	}
	if err := fs.Parse([]string{"--format", "junit"}); err != nil || *f != reports.FormatJUnit {
		t.Errorf("--format junit: %v, %q", err, *f)
	}
	rep := report(t, verifytest.Clean())
	if err := reports.Write(&bytes.Buffer{}, rep, "pdf", reports.Options{}); err == nil {
		t.Error("Write accepted an unknown format")
	}
}
