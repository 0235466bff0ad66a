package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/fuzz"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/tensor"
)

func init() {
	register(&command{name: "fuzz", summary: "property-based fuzzing of random plans; shrunk counterexamples; mutation score", run: runFuzz})
}

// fuzzGCPercent: a campaign allocates many small short-lived tensors per plan; collecting
// less often nearly doubles plans/s on 2 cores (docs/fuzz.md) at a few MB of extra heap. GOGC,
// when set, wins.
const fuzzGCPercent = 400

// defaultFuzzBudget and defaultMutationBudget apply when neither --budget nor --count is given.
const (
	defaultFuzzBudget     = 60 * time.Second
	defaultMutationBudget = 30 * time.Second // per bug and trial
)

func runFuzz(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("fuzz", "[--budget 60s | --count N] [--seed S] [--bug NAME] [--shard i/n] [--corpus DIR] [--summary FILE]\n"+
		"       spcheck fuzz --mutation [--trials K] [--budget 30s] [--seed S] [--bug NAME,…]\n"+
		"       spcheck fuzz --merge SUMMARY.json…\n\n"+
		"Draws random valid plans (and collective-algebra and serving cases) and checks properties:\n"+
		"every plan verifies against the oracle; with --bug, the fuzzer hunts that bug. A falsified\n"+
		"property is shrunk to a minimal case and printed with the verifier's diagnosis and one\n"+
		"command that reproduces it. Exit 0: every property held (with --bug: not detected); 1: a\n"+
		"counterexample (with --mutation: a bug survived); 2: bad usage. See docs/fuzz.md.", stderr)
	budget := fs.Duration("budget", 0, "stop starting cases after this long (default 60s; with --mutation 30s per bug and trial)")
	count := fs.Int("count", 0, "run the campaign's cases 0…N−1 (split across shards); with --budget, whichever ends first")
	seed := fs.Int64("seed", 0, "campaign seed (default: a fresh one, printed)")
	bug := fs.String("bug", "", "hunt this bug (a catalogue or serving bug); with --mutation a comma-separated list")
	shard := fs.String("shard", "", "i/n: run only the cases i, i+n, i+2n, … (array jobs; merge their --summary files)")
	corpus := fs.String("corpus", "", "directory of counterexample plans: re-run first, new ones saved there")
	summary := fs.String("summary", "", "write the campaign's JSON summary here (what --merge reads)")
	caseIdx := fs.Int("case", -1, "run only this case of the campaign (what a counterexample's reproduce line uses)")
	workers := fs.Int("workers", 0, "cases run in parallel (default GOMAXPROCS)")
	space := fs.String("space", "tiny", "plan space: tiny (mesh degrees ≤ 4, tiny dims) or mesh2 (every degree ≤ 2: fastest)")
	dtypes := fs.String("dtypes", "", "comma-separated dtypes to draw, repeat one to weight it (default fp64,fp64,fp64,fp32,bf16,fp16)")
	mutation := fs.Bool("mutation", false, "mutation score: hunt every bug from fresh seeds and print a table")
	trials := fs.Int("trials", 1, "--mutation: campaigns per bug (the table shows the median time to detect)")
	blind := fs.Bool("blind", false, "with --bug or --mutation: draw plans as for the correct simulator, not only those where the bug can show")
	merge := fs.Bool("merge", false, "merge the shard summaries given as arguments")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if *merge {
		return runFuzzMerge(fs.Args(), *summary, stdout, stderr)
	}
	if fs.NArg() != 0 {
		return fail(stderr, "fuzz", fmt.Errorf("unexpected argument %q", fs.Arg(0)))
	}
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(fuzzGCPercent)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["seed"] {
		*seed = time.Now().UnixNano() & (1<<31 - 1)
	}
	sp, err := fuzzSpace(*space, *dtypes)
	if err != nil {
		return fail(stderr, "fuzz", err)
	}
	if *mutation {
		if set["shard"] || set["case"] || set["corpus"] || set["count"] {
			return fail(stderr, "fuzz", errors.New("--mutation takes --budget, --trials, --seed, --bug, --space, --dtypes and --workers only"))
		}
		if *budget == 0 {
			*budget = defaultMutationBudget
		}
		return runMutation(fuzz.MutationConfig{Seed: *seed, Trials: *trials, Budget: *budget, Space: sp, Workers: *workers,
			Bugs: splitList(*bug), Variants: bugs.Variants(), Blind: *blind, Log: stdout}, stdout, stderr)
	}
	cfg := fuzz.Config{Seed: *seed, Budget: *budget, Count: *count, Bug: *bug, Variants: bugs.Variants(), Blind: *blind, Corpus: *corpus,
		Space: sp, Workers: *workers, Log: stdout, Live: progressWriter(stdout) != nil}
	if set["case"] {
		cfg.Only = []int{*caseIdx}
	}
	if cfg.Budget == 0 && cfg.Count == 0 {
		cfg.Budget = defaultFuzzBudget
	}
	if *shard != "" {
		if cfg.Shard, cfg.Shards, err = parseShard(*shard); err != nil {
			return fail(stderr, "fuzz", err)
		}
	}
	s, err := fuzz.Run(cfg)
	if err != nil {
		return fail(stderr, "fuzz", err)
	}
	if err := reports.FuzzOutcome(stdout, s); err != nil {
		return fail(stderr, "fuzz", err)
	}
	if *summary != "" {
		if err := writeReport(*summary, stdout, func(w io.Writer) error { return reports.FuzzSummaryJSON(w, s) }); err != nil {
			return fail(stderr, "fuzz", err)
		}
	}
	if s.Failed() {
		return exitFailed
	}
	return exitOK
}

func runMutation(cfg fuzz.MutationConfig, stdout, stderr io.Writer) int {
	for _, b := range cfg.Bugs {
		if _, ok := fuzz.LookupServingBug(b); !ok {
			if err := (fuzz.Target{Bug: b, Variants: cfg.Variants}).Validate(); err != nil {
				return fail(stderr, "fuzz", err)
			}
		}
	}
	fmt.Fprintf(stdout, "mutation: seed %d, %d trial(s) per bug, budget %s each\n", cfg.Seed, max(cfg.Trials, 1), cfg.Budget)
	rs, err := fuzz.Mutation(cfg)
	if err != nil {
		return fail(stderr, "fuzz", err)
	}
	fmt.Fprintln(stdout)
	if err := reports.MutationTable(stdout, rs); err != nil {
		return fail(stderr, "fuzz", err)
	}
	if d, n := fuzz.Score(rs); d < n {
		return exitFailed
	}
	return exitOK
}

func runFuzzMerge(files []string, out string, stdout, stderr io.Writer) int {
	if len(files) == 0 {
		return fail(stderr, "fuzz", errors.New("--merge needs the shard summary files as arguments"))
	}
	var sums []*fuzz.Summary
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return fail(stderr, "fuzz", err)
		}
		s, err := fuzz.ReadSummary(f, name)
		f.Close()
		if err != nil {
			return fail(stderr, "fuzz", err)
		}
		sums = append(sums, s)
	}
	m, missing, err := fuzz.Merge(sums)
	if err != nil {
		return fail(stderr, "fuzz", err)
	}
	if err := reports.FuzzMerge(stdout, m); err != nil {
		return fail(stderr, "fuzz", err)
	}
	if out != "" {
		if err := writeReport(out, stdout, func(w io.Writer) error { return reports.FuzzSummaryJSON(w, m) }); err != nil {
			return fail(stderr, "fuzz", err)
		}
	}
	switch {
	case m.Failed():
		return exitFailed
	case len(missing) > 0:
		fmt.Fprintf(stderr, "spcheck fuzz: incomplete campaign: no summary for shard(s) %v of %d\n", missing, m.Shards)
		return exitBadInput
	}
	return exitOK
}

// parseShard reads "i/n" with 0 ≤ i < n.
func parseShard(s string) (int, int, error) {
	a, b, ok := strings.Cut(s, "/")
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || n < 1 || i < 0 || i >= n {
		return 0, 0, fmt.Errorf("--shard %q: want i/n with 0 ≤ i < n (e.g. 3/8)", s)
	}
	return i, n, nil
}

func splitList(s string) []string {
	if s == "" {
		return nil
	}
	var out []string
	for _, x := range strings.Split(s, ",") {
		if x = strings.TrimSpace(x); x != "" {
			out = append(out, x)
		}
	}
	return out
}

// fuzzSpace is the named plan space with --dtypes applied.
func fuzzSpace(name, dtypes string) (fuzz.Space, error) {
	sp, ok := fuzz.Spaces()[name]
	if !ok {
		return fuzz.Space{}, fmt.Errorf("unknown --space %q (want tiny or mesh2)", name)
	}
	if dtypes != "" {
		sp.DTypes = nil
		for _, s := range splitList(dtypes) {
			d, err := tensor.ParseDType(s)
			if err != nil || !d.IsFloat() {
				return fuzz.Space{}, fmt.Errorf("--dtypes: %q is not a float dtype (fp64, fp32, bf16, fp16)", s)
			}
			sp.DTypes = append(sp.DTypes, d)
		}
	}
	return sp, nil
}
