package main

import (
	"fmt"
	"io"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/reports"
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
	if err := reports.Catalogue(stdout, bugs.All(), *verbose); err != nil {
		return fail(stderr, "bugs", err)
	}
	return exitOK
}
