// Package verifytest builds traces in memory for tests of the verifier and of its callers: a
// rank-by-rank builder, and the seed scenarios of seed-bugs.md (§1.4, §1.8, §2.3, §4.7) as
// reference/candidate pairs whose numbers are the documents' own.
package verifytest
