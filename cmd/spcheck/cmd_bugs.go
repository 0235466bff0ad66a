package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spcheck/spcheck/bugs"
)

func init() {
	register(&command{name: "bugs", summary: "list the bug catalogue: one line per bug, with its class and source", run: runBugs})
}

func runBugs(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("bugs", "[-v]\n\n"+
		"Lists every bug spcheck reproduces and detects: name, class (C1–C7),\n"+
		"what it does, and the report it came from. With -v, also its minimal plan and the\n"+
		"diagnosis spcheck must give. 'spcheck repro NAME' runs one; 'spcheck check' all.", stderr)
	verbose := fs.Bool("v", false, "also print each bug's minimal plan and expected diagnosis")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 0 {
		return fail(stderr, "bugs", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	for _, b := range bugs.All() {
		fmt.Fprintf(stdout, "%-37s %s  %s  [%s]\n", b.Name, b.Class, b.Summary, b.Source)
		if *verbose {
			if b.Domain == bugs.Training {
				fmt.Fprintf(stdout, "    plan:  %s\n", b.Plan)
			}
			fmt.Fprintf(stdout, "    shows: %s\n", b.Expect.Shows)
			if d := expectLine(b); d != "" {
				fmt.Fprintf(stdout, "    first: %s\n", d)
			}
		}
	}
	fmt.Fprintf(stdout, "\nclasses: %s\n", classLegend())
	return exitOK
}

// expectLine is a bug's expected first divergence in one line.
func expectLine(b *bugs.Bug) string {
	ex := b.Expect
	if b.Domain == bugs.Serving {
		var cls []string
		for _, c := range ex.Classes {
			cls = append(cls, string(c))
		}
		return strings.Join(cls, ", ")
	}
	return fmt.Sprintf("%s at %s (%s)", ex.Verdict, ex.First, ex.Signature)
}

func classLegend() string {
	var parts []string
	for _, c := range []bugs.Class{bugs.C1, bugs.C2, bugs.C3, bugs.C4, bugs.C5, bugs.C6, bugs.C7} {
		parts = append(parts, fmt.Sprintf("%s %s", c, bugs.ClassTitle[c]))
	}
	return strings.Join(parts, "; ")
}
