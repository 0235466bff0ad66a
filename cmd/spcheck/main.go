package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// Exit codes shared by every subcommand.
const (
	exitOK       = 0
	exitFailed   = 1
	exitBadInput = 2
)

// command is one subcommand. run returns the exit code; it writes results to stdout and
// diagnostics to stderr.
type command struct {
	name    string
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]*command{}

func register(c *command) { commands[c.name] = c }

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return exitBadInput
		}
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "spcheck: unknown command %q\n\n", args[0])
		usage(stderr)
		return exitBadInput
	}
	return c.run(args[1:], stdout, stderr)
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "spcheck — numerical correctness verifier for distributed-parallel transformer runs")
	fmt.Fprintln(w, "\nUsage: spcheck COMMAND [flags]   (spcheck COMMAND --help for its flags)\n\nCommands:")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-10s %s\n", n, commands[n].summary)
	}
	fmt.Fprintln(w, "\nExit codes: 0 verified, 1 verification failed, 2 bad input or usage.")
}

// newFlags makes a FlagSet for a subcommand whose --help prints the synopsis and flags.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		w := fs.Output()
		fmt.Fprintf(w, "Usage: spcheck %s %s\n", name, synopsis)
		if c := commands[name]; c != nil && !strings.Contains(synopsis, "\n\n") {
			fmt.Fprintf(w, "\n%s.\n", upperFirst(c.summary))
		}
		if !strings.Contains(synopsis, "Exit") {
			fmt.Fprintf(w, "\n%s\n", exitCodes[name])
		}
		fmt.Fprintf(w, "\nExample:\n  %s\n\nFlags:\n", examples[name])
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args; it returns (exit code, done) where done means the caller must return
// that code (help was asked for, or the flags were bad).
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitBadInput, true
	}
	return 0, false
}

// fail prints "spcheck CMD: err" and returns the bad-input exit code.
func fail(stderr io.Writer, cmd string, err error) int {
	fmt.Fprintf(stderr, "spcheck %s: %s\n", cmd, strings.TrimSpace(err.Error()))
	return exitBadInput
}

// exitCodes says what each command's exit codes mean, for its --help (commands whose synopsis
// says it themselves are not listed).
var exitCodes = map[string]string{
	"bugs":    "Exit codes: 0 listed, 2 bad usage.",
	"check":   "Exit codes: 0 every check passed, 1 a check failed, 2 bad usage.",
	"compare": "Exit codes: 0 every tensor within tolerance, 1 verification failed, 2 bad input (an unreadable trace, or\ntraces of two configurations: the plans' model keys or a parameter's or input's shape differ).",
	"diff":    "Exit codes: 0 every loss and gradient MD5 equal, 1 some differ, 2 bad input.",
	"fuzz":    "Exit codes: 0 no counterexample, 1 a counterexample (or a bug detected), 2 bad usage.",
	"inspect": "Exit codes: 0 listed, 2 an unreadable trace (the message names file, rank, tensor and field).",
	"oracle":  "Exit codes: 0 written, 2 bad plan or output directory.",
	"plan":    "Exit codes: 0 compiled, 2 bad plan.",
	"repro":   "Exit codes: 0 the bug was not detected on this plan, 1 detected, 2 bad usage.",
	"run":     "Exit codes: 0 written, 1 the simulator refused the run, 2 bad plan.",
	"version": "Exit codes: 0.",
}

// examples is one example invocation per command, for its --help.
var examples = map[string]string{
	"bugs":    "spcheck bugs -v",
	"check":   "spcheck check --format junit --out spcheck.xml",
	"compare": "spcheck compare ref/ cand/ --format junit --out spcheck.xml   # ref/: spcheck oracle or a trusted run",
	"diff":    "spcheck diff run-a/ run-b/",
	"fuzz":    "spcheck fuzz --budget 60s --seed 1",
	"gpu":     "spcheck gpu --plan 'tp=2,dtype=fp32' --exec cuda/build/spexec --work /tmp/spgpu",
	"inspect": "spcheck inspect cand/",
	"oracle":  "spcheck oracle --plan 'mtp=2,packed=4:3:5' --out ref/",
	"plan":    "spcheck plan --plan 'tp=2,pp=2,sp=megatron' --rank 1",
	"repro":   "spcheck repro partial-p2p-under-sp",
	"run":     "spcheck run --plan 'tp=2,sp=megatron' --out cand/",
	"verify":  "spcheck verify --plan 'tp=2,pp=2,sp=megatron,microbatches=2'",
	"version": "spcheck version",
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
