package main

import (
	"flag"
	"strings"

	"github.com/spcheck/spcheck/verify"
)

// listFlag collects every value of a repeatable flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, " ") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

// tolFlags are the repeatable --tol and --ignore flags of the commands that produce a report.
type tolFlags struct {
	tol, ignore listFlag
}

// ruleHelp is the part of every --tol help text that describes per-tensor rules.
const ruleHelp = "; repeatable, and a value 'REGEX=rtol' sets the tolerance of the tensors whose name matches REGEX (first matching rule wins, before any dtype tolerance or noise reference; same units: |cand − ref| ≤ rtol·(|ref| + rms(ref)))"

// addTolFlags registers --tol (usage: what a plain value means for this command) and --ignore.
func addTolFlags(fs *flag.FlagSet, usage string) *tolFlags {
	t := &tolFlags{}
	fs.Var(&t.tol, "tol", usage+ruleHelp)
	fs.Var(&t.ignore, "ignore", "leave out the tensors whose name matches this regular expression (repeatable); the report lists them as ignored")
	return t
}

// calibrate reports whether --tol calibrate was given.
func (t *tolFlags) calibrate() bool {
	for _, v := range t.tol {
		if v == "calibrate" {
			return true
		}
	}
	return false
}

// apply parses the flags into opt (dtype tolerances, rules, ignore patterns). --tol calibrate
// is left to a caller that handles it (calibrateOK); others get ParseTolerances' error for it.
func (t *tolFlags) apply(opt *verify.Options, calibrateOK bool) error {
	var vals []string
	for _, v := range t.tol {
		if v != "calibrate" || !calibrateOK {
			vals = append(vals, v)
		}
	}
	var err error
	if opt.Tol, opt.TolRules, err = verify.ParseTolFlags(vals); err != nil {
		return err
	}
	opt.Ignore, err = verify.ParseIgnoreFlags(t.ignore)
	return err
}
