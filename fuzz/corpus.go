package fuzz

import (
	"crypto/md5"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spcheck/spcheck/plan"
)

// A corpus is a directory of counterexample plans, one per file named <hash>.plan holding
// the plan string (lines starting with # are comments). Every campaign on the corpus re-runs
// the plans of its own target (their bug key is the campaign's --bug) before drawing new
// ones, and saves the shrunk plan of a new counterexample there.
const corpusExt = ".plan"

type corpusPlan struct {
	file string
	plan plan.Plan
}

// loadCorpus reads dir's plans whose bug key is bug, in file-name order. A missing dir is an
// empty corpus; an unreadable or invalid plan file is an error naming it.
func loadCorpus(dir, bug string) ([]corpusPlan, error) {
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("corpus %s: %w", dir, err)
	}
	var out []corpusPlan
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), corpusExt) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		p, err := readPlanFile(path)
		if err != nil {
			return nil, err
		}
		if p.Bug == bug {
			out = append(out, corpusPlan{file: path, plan: p})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].file < out[j].file })
	return out, nil
}

// maxPlanFile bounds a corpus file: a plan string is a few hundred bytes.
const maxPlanFile = 64 << 10

func readPlanFile(path string) (plan.Plan, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return plan.Plan{}, fmt.Errorf("corpus: %w", err)
	}
	if len(b) > maxPlanFile {
		return plan.Plan{}, fmt.Errorf("corpus file %s: %d bytes, not a plan (at most %d)", path, len(b), maxPlanFile)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		return plan.Plan{}, fmt.Errorf("corpus file %s: want one plan line, found %d", path, len(lines))
	}
	p, err := plan.Parse(lines[0])
	if err != nil {
		return plan.Plan{}, fmt.Errorf("corpus file %s: %w", path, err)
	}
	return p, nil
}

// saveCorpus writes the plan string s to dir (created if needed) under a name derived from
// its hash, so saving the same counterexample twice keeps one file.
func saveCorpus(dir, s string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("%x", md5.Sum([]byte(s)))[:16]+corpusExt)
	body := "# counterexample found by spcheck fuzz; every campaign on this corpus re-runs it first\n" + s + "\n"
	return path, os.WriteFile(path, []byte(body), 0o644)
}
