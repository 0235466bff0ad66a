// Package reports renders the verifier's results: terminal tables (tablewriter), Markdown for a
// PR comment or $GITHUB_STEP_SUMMARY, JSON with a stable schema (docs/report-json.md), JUnit
// XML with one test case per logical tensor, and one self-contained HTML file with a heatmap per
// diagnosed tensor. Every rendering of a failure ends with the command that reproduces it.
//
// Renderers are pure functions of a *verify.Report (or *verify.DiffReport): the same report
// gives the same bytes.
package reports
