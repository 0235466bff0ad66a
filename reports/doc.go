// Package reports renders every document spcheck prints; the other packages build the data.
//
//   - comparison reports (*verify.Report: compare, verify, gpu): terminal tables
//     (tablewriter), Markdown for a PR comment or $GITHUB_STEP_SUMMARY, JSON with a stable
//     schema (docs/report-json.md), JUnit XML with one test case per logical tensor, and one
//     self-contained HTML file with a heatmap per diagnosed tensor;
//   - A/B diffs (*verify.DiffReport: diff) in text, Markdown and JSON;
//   - a trace's tensor listing (inspect) and a compiled plan's ranks and ops (plan);
//   - serving runs and the emission-gate table (serving.Report, serving.GateTable);
//   - fuzz campaign outcomes, counterexamples, shard summaries and the mutation table.
//
// There is one list of formats (Formats); each document offers some of them (ReportFormats,
// DiffFormats, GateFormats), and FormatFlag checks a command's --format once, when its flags are
// parsed. Every rendering of a failure ends with the command that reproduces it.
//
// Renderers are pure functions of their data: the same data gives the same bytes. Terminal
// tables come from one helper (table), the only user of tablewriter in spcheck.
package reports
