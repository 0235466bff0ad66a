package main

import (
	"flag"
	"fmt"
	"regexp"
	"strings"

	"github.com/spcheck/spcheck/trace"
)

// names is a repeatable flag of comma-separated names.
type names []string

func (n *names) String() string { return strings.Join(*n, ",") }

func (n *names) Set(s string) error {
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*n = append(*n, v)
		}
	}
	return nil
}

// dumpFlags registers --fingerprint, --dump and --dump-regex on fs. The returned function
// builds the trace.Dump after fs.Parse (nil: every tensor in full).
func dumpFlags(fs *flag.FlagSet) func() (*trace.Dump, error) {
	fp := fs.Bool("fingerprint", false, "store every tensor as a fingerprint (hash, norms, a sample, block sketches) instead of its data, except those --dump and --dump-regex select (docs/trace-format.md)")
	var dump names
	fs.Var(&dump, "dump", "with --fingerprint: a logical tensor `NAME` to store in full (repeatable, or comma-separated): the targeted re-run 'spcheck compare' prints")
	re := fs.String("dump-regex", "", "with --fingerprint: store in full every tensor whose logical name matches this regular expression")
	samples := fs.Int("samples", trace.DefaultSamples, "with --fingerprint: the number of elements each tensor's sample aims at")
	return func() (*trace.Dump, error) {
		if !*fp {
			if len(dump) > 0 || *re != "" {
				return nil, fmt.Errorf("--dump and --dump-regex select the tensors kept in full in a --fingerprint trace; without --fingerprint every tensor is in full")
			}
			return nil, nil
		}
		d := &trace.Dump{Fingerprint: true, Names: dump, Samples: *samples}
		if *samples < 1 {
			return nil, fmt.Errorf("--samples %d: want at least 1", *samples)
		}
		if *re != "" {
			var err error
			if d.Regex, err = regexp.Compile(*re); err != nil {
				return nil, fmt.Errorf("--dump-regex: %v", err)
			}
		}
		return d, nil
	}
}

// fingerprints counts the entries of tr stored as fingerprints.
func fingerprints(tr *trace.Trace) int {
	n := 0
	for _, f := range tr.Files {
		for _, e := range f.Entries {
			if e.IsFingerprint() {
				n++
			}
		}
	}
	return n
}

// storedBytes is the tensor bytes tr's files store.
func storedBytes(tr *trace.Trace) int64 {
	var n int64
	for _, f := range tr.Files {
		for _, e := range f.Entries {
			n += e.End - e.Begin
		}
	}
	return n
}
