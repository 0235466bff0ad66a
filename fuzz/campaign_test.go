package fuzz

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spcheck/spcheck/internal/scenario"
)

func mustRun(t *testing.T, cfg Config) *Summary {
	t.Helper()
	if cfg.Space.MaxTP == 0 {
		cfg.Space = Mesh2Space()
	}
	s, err := Run(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestCountedCampaignIsDeterministic: a counted campaign gives the same cases and the same
// counterexample whatever the number of workers (a counterexample at case i lets every case
// below i finish and keeps the lowest).
func TestCountedCampaignIsDeterministic(t *testing.T) {
	for _, bug := range []string{"", "mtp-loss-not-per-microbatch"} {
		one := mustRun(t, Config{Variants: testCatalogue, Seed: 5, Count: 20, Bug: bug, Workers: 1})
		two := mustRun(t, Config{Variants: testCatalogue, Seed: 5, Count: 20, Bug: bug, Workers: 2})
		if !reflect.DeepEqual(one.Cases, two.Cases) || len(one.Counterexamples) != len(two.Counterexamples) {
			t.Fatalf("bug %q: 1 worker %v %d cx, 2 workers %v %d cx", bug, one.Cases, len(one.Counterexamples), two.Cases, len(two.Counterexamples))
		}
		for i, a := range one.Counterexamples {
			b := two.Counterexamples[i]
			if a.Case != b.Case || a.Shrunk != b.Shrunk || a.Diagnosis != b.Diagnosis || !reflect.DeepEqual(a.Report, b.Report) {
				t.Errorf("bug %q: case %d → %s with 1 worker, case %d → %s with 2", bug, a.Case, a.Shrunk, b.Case, b.Shrunk)
			}
		}
	}
}

// TestShardsMergeToTheWholeCampaign: the shards of a counted campaign, merged, ran exactly the
// cases of the unsharded campaign; a counterexample keeps its case index and its command
// reproduces it alone.
func TestShardsMergeToTheWholeCampaign(t *testing.T) {
	whole := mustRun(t, Config{Variants: testCatalogue, Seed: 9, Count: 23})
	var parts []*Summary
	for i := range 3 {
		s := mustRun(t, Config{Variants: testCatalogue, Seed: 9, Count: 23, Shard: i, Shards: 3})
		b, err := json.Marshal(s) // as reports.FuzzSummaryJSON writes it
		if err != nil {
			t.Fatal(err)
		}
		back, err := ReadSummary(bytes.NewReader(b), "shard")
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, back)
	}
	m, missing, err := Merge(parts)
	if err != nil || len(missing) > 0 {
		t.Fatalf("merge: %v, missing %v", err, missing)
	}
	if !reflect.DeepEqual(m.Cases, whole.Cases) {
		t.Errorf("merged shards ran %v, the whole campaign %v", m.Cases, whole.Cases)
	}
	if _, missing, _ := Merge(parts[:2]); !reflect.DeepEqual(missing, []int{2}) {
		t.Errorf("two of three shards: missing %v, want [2]", missing)
	}
	cases := []struct {
		reason string
		sums   []*Summary
	}{
		{"a shard twice", []*Summary{parts[0], parts[0]}},
		{"another campaign's shard", []*Summary{parts[0], {Seed: 10, Count: 23, Shards: 3, ShardsRun: []int{1}}}},
	}
	for _, c := range scenario.Cases(t, cases) {
		if _, _, err := Merge(c.sums); err == nil {
			t.Errorf("%s: merged", c.reason)
		}
	}
}

func TestOnlyReRunsOneCase(t *testing.T) {
	bug := "mtp-loss-not-per-microbatch"
	s := mustRun(t, Config{Variants: testCatalogue, Seed: 3, Count: 30, Bug: bug})
	if !s.Failed() {
		t.Fatal("no counterexample")
	}
	cx := s.Counterexamples[0]
	if !strings.Contains(cx.Reproduce, "spcheck verify --plan '"+cx.Shrunk+"'") {
		t.Errorf("reproduce %q does not run the shrunk plan", cx.Reproduce)
	}
	again := mustRun(t, Config{Variants: testCatalogue, Seed: 3, Bug: bug, Only: []int{cx.Case}})
	if !again.Failed() || again.Counterexamples[0].Shrunk != cx.Shrunk || again.Counterexamples[0].Case != cx.Case {
		t.Errorf("case %d alone: %+v", cx.Case, again.Counterexamples)
	}
}

// TestCorpusIsReRunFirst: a counterexample is saved in the corpus; the next campaign, from
// another seed, re-runs it before drawing anything and reports it again.
func TestCorpusIsReRunFirst(t *testing.T) {
	dir := t.TempDir()
	bug := testResidualAtZero
	first := mustRun(t, Config{Variants: testCatalogue, Seed: 1, Count: 10, Bug: bug, Corpus: dir})
	if !first.Failed() || first.Counterexamples[0].Saved == "" {
		t.Fatalf("no counterexample saved: %+v", first.Counterexamples)
	}
	again := mustRun(t, Config{Variants: testCatalogue, Seed: 99, Count: 10, Bug: bug, Corpus: dir})
	if again.CorpusRerun != 1 || !again.Failed() || again.Counterexamples[0].Case != -1 ||
		again.Counterexamples[0].Corpus != first.Counterexamples[0].Saved || totalCases(again) != 0 {
		t.Errorf("second campaign: %+v", again)
	}
	// The correct simulator's campaign ignores another target's plans, and a corpus plan that
	// now verifies lets the campaign go on.
	plain := mustRun(t, Config{Variants: testCatalogue, Seed: 1, Count: 10, Corpus: dir})
	if plain.CorpusRerun != 0 || plain.Failed() {
		t.Errorf("equivalence campaign on a detection corpus: %+v", plain)
	}
	if err := os.WriteFile(filepath.Join(dir, "ok.plan"), []byte("tp=2,pp=2,sp=megatron\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plain = mustRun(t, Config{Variants: testCatalogue, Seed: 1, Count: 10, Corpus: dir})
	if plain.CorpusRerun != 1 || plain.Failed() || totalCases(plain) != 10 {
		t.Errorf("equivalence campaign with a passing corpus plan: %+v", plain)
	}
}

func TestBadCorpusFileIsAnError(t *testing.T) {
	for _, body := range []string{"tp=0\n", "tp=2\npp=2\n", "# only a comment\n", "nonsense"} {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, "x.plan"), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := Run(Config{Variants: testCatalogue, Seed: 1, Count: 1, Corpus: dir}); err == nil || !strings.Contains(err.Error(), "x.plan") {
			t.Errorf("corpus file %q: %v, want an error naming it", body, err)
		}
	}
}

func TestBadConfigs(t *testing.T) {
	cases := []struct {
		reason string
		cfg    Config
	}{
		{"no budget, no count", Config{Variants: testCatalogue, Seed: 1}},
		{"shard out of range", Config{Variants: testCatalogue, Count: 1, Shard: 3, Shards: 3}},
		{"negative count", Config{Variants: testCatalogue, Count: -1}},
		{"a case of another shard", Config{Variants: testCatalogue, Only: []int{5}, Shard: 1, Shards: 3}},
		{"an empty space", Config{Variants: testCatalogue, Count: 1, Space: Space{MaxTP: 1}}},
		{"unknown bug", Config{Variants: testCatalogue, Count: 1, Bug: "nope"}},
	}
	for _, c := range scenario.Cases(t, cases) {
		if _, err := Run(c.cfg); err == nil {
			t.Errorf("%s: ran", c.reason)
		}
	}
}

// TestLogLines: a log gets the start line (the outcome is a document: reports.FuzzOutcome); a
// counterexample carries its seed, shrunk plan, the verifier's report and its command; a
// terminal gets status lines redrawn in place, a log none of those.
func TestLogLines(t *testing.T) {
	var log bytes.Buffer
	s := mustRun(t, Config{Variants: testCatalogue, Seed: 4, Count: 10, Log: &log})
	out := log.String()
	if want := "fuzz: the correct simulator (equivalence, algebra, serving); seed 4, cases 0…9\n"; out != want {
		t.Errorf("log %q, want %q", out, want)
	}
	if want := map[string]int{PropEquivalence: 8, PropAlgebra: 1, PropServing: 1}; !reflect.DeepEqual(s.Cases, want) {
		t.Errorf("cases %v, want %v", s.Cases, want)
	}
	log.Reset()
	s = mustRun(t, Config{Variants: testCatalogue, Seed: 4, Count: 10, Bug: testNoTPGradSum, Log: &log})
	if !s.Failed() {
		t.Fatal("no counterexample")
	}
	cx := s.Counterexamples[0]
	if cx.Property != PropDetection || cx.Bug != testNoTPGradSum || cx.Shrunk == "" || cx.Report == nil ||
		len(cx.Report.First()) == 0 || !strings.HasPrefix(cx.Reproduce, "spcheck verify --plan") {
		t.Errorf("counterexample lacks its property, bug, shrunk plan, report or command: %+v", cx)
	}
	if strings.Contains(log.String(), "\r") {
		t.Error("a log got terminal redraws")
	}
	log.Reset()
	mustRun(t, Config{Variants: testCatalogue, Seed: 4, Budget: liveInterval + 50*time.Millisecond, Log: &log, Live: true})
	if !strings.Contains(log.String(), "\r\x1b[K") || !strings.Contains(log.String(), "plans/s") {
		t.Errorf("no live status line: %q", log.String())
	}
}

func TestBudgetStopsTheCampaign(t *testing.T) {
	start := time.Now()
	s := mustRun(t, Config{Variants: testCatalogue, Seed: 2, Budget: 300 * time.Millisecond})
	if el := time.Since(start); el > 3*time.Second || totalCases(s) == 0 {
		t.Errorf("a 300ms budget ran %v and %d cases", el, totalCases(s))
	}
}
