// Package scenario holds spcheck's test-file helpers: scripted scenario files, golden files and
// table-test cases. It is imported by tests only.
//
// # Scenario files
//
// A scenario file (in the spirit of cockroachdb/datadriven) is a sequence of blocks:
//
//	# a comment: lines starting with '#' between blocks are kept as they are
//	command arg1 "arg with spaces" key=value
//	optional input lines
//	----
//	expected output
//	(ends at the first blank line)
//
// Output that holds blank lines, or a line reading "----", is written between doubled
// separators, and ends at the next doubled separator:
//
//	command
//	----
//	----
//	first paragraph
//
//	second paragraph
//	----
//	----
//
// Run (or RunFile) parses the files, calls the test's function for every block and compares what
// it returns with the expected output; a mismatch is reported with the block's file:line and a
// line diff.
//
// # One flag: -rewrite
//
// Every expected output in the repository — scenario files and golden files alike — is
// regenerated with the same flag:
//
//	go test ./pkg -rewrite
//
// and the result is reviewed as a diff (git diff) before it is committed. Only the test binaries
// of packages that use this package know the flag, so name the packages (go test ./reports
// ./cmd/spcheck -rewrite) rather than ./... . Under -rewrite a
// scenario file is rewritten in place (commands, inputs and comments are kept byte for byte; only
// the expected outputs change) and Golden writes the file it was given.
//
// # Table tests
//
// Cases makes a table test fail when one of its cases has no reason: every case says why it is
// in the table (go-cmp's convention), so a reader knows what breaks when it fails. This
// package's own test reads every _test.go file of the module and fails on a table test (a range
// over a slice of structs, outside benchmarks) that does not go through Cases.
package scenario
