package main

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/reports"
)

// TestReportsFitTheTerminal runs spcheck repro on every catalogue bug, spcheck bugs and a
// verify, and fails on a line wider than reports.Width, except a command line or a line whose
// one space-free word is itself too long to wrap (a config string).
func TestReportsFitTheTerminal(t *testing.T) {
	runs := [][]string{{"bugs"}, {"verify", "--tp", "2", "--sp", "megatron", "--bug", "sp-norm-grad-avg"}}
	for _, b := range bugs.All() {
		runs = append(runs, []string{"repro", b.Name})
	}
	for _, args := range runs {
		_, out, _ := runCmd(args...)
		for i, l := range strings.Split(out, "\n") {
			if w := utf8.RuneCountInString(l); w > reports.Width && !unwrappable(l) {
				t.Errorf("spcheck %s: line %d is %d columns wide (> %d):\n%s", strings.Join(args, " "), i+1, w, reports.Width, l)
			}
		}
	}
}

func unwrappable(l string) bool {
	f := strings.Fields(l)
	if len(f) >= 2 && f[0] == "spcheck" || strings.Contains(l, "re-run: spcheck") {
		return true
	}
	for _, w := range f {
		if utf8.RuneCountInString(w) > reports.Width/2 {
			return true
		}
	}
	return false
}
