package bugs_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/bugs"
	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/reports"
	"github.com/spcheck/spcheck/verify"
)

// The catalogue's outcomes as scenario files: testdata/catalogue/BUG.txt for every bug and
// testdata/examples/NAME.txt for every worked example hold what spcheck shows for them — the
// first divergence with its block table and signature, whether that is the catalogue's expected
// diagnosis, the gradient MD5s of the correct and the buggy run, the fixed form's verdict, the
// worked examples' numbers. `go test ./bugs -rewrite` regenerates them; review the diff.
//
// Commands:
//
//	repro BUG                   the bug on its minimal plan against the oracle (MD5 columns blank:
//	                            they are the md5s block's), then the expectation check
//	md5s BUG goarch=A goamd64=V the loss and gradient MD5s, correct vs buggy run; bit patterns
//	                            depend on FMA fusion, so the block is checked only where GOARCH
//	                            and GOAMD64 are the ones it names
//	fixed BUG                   the bug switched off on the same plan (or config)
//	example NAME                a worked example: its numbers beside the hand-worked ones

// TestEveryBugHasAScenario: one file per catalogue bug and per worked example, none other.
// Under -rewrite it first writes the commands of a missing file (the scenario tests, which run
// after it, fill in their outputs).
func TestEveryBugHasAScenario(t *testing.T) {
	if scenario.Rewriting() {
		for _, b := range bugs.All() {
			writeSkeleton(t, filepath.Join("testdata", "catalogue", b.Name+".txt"), bugSkeleton(b))
		}
		for _, e := range bugs.Examples() {
			writeSkeleton(t, filepath.Join("testdata", "examples", e.Name+".txt"),
				fmt.Sprintf("# %s (%s): %s\n\nexample %s\n----\n", e.Name, e.Source, e.Title, e.Name))
		}
	}
	var bugNames, exampleNames []string
	for _, b := range bugs.All() {
		bugNames = append(bugNames, b.Name)
	}
	for _, e := range bugs.Examples() {
		exampleNames = append(exampleNames, e.Name)
	}
	for dir, want := range map[string][]string{"catalogue": bugNames, "examples": exampleNames} {
		files, _ := filepath.Glob(filepath.Join("testdata", dir, "*.txt"))
		var got []string
		for _, f := range files {
			got = append(got, strings.TrimSuffix(filepath.Base(f), ".txt"))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("testdata/%s holds %v, want one file each for %v", dir, got, want)
		}
	}
}

func TestCatalogueScenarios(t *testing.T) { scenario.Run(t, "catalogue/*.txt", runScenario) }

func TestExampleScenarios(t *testing.T) { scenario.Run(t, "examples/*.txt", runScenario) }

// kernelRank is the rank a refused run names first: which of a stage's ranks fails first
// depends on scheduling, so the scenario shows it as R.
var kernelRank = regexp.MustCompile(`kernel: rank \d+ `)

func runScenario(t *testing.T, b *scenario.Block) string {
	t.Helper()
	if len(b.Args) == 0 {
		b.Fatalf(t, "name a bug or an example")
	}
	var out bytes.Buffer
	var err error
	switch b.Cmd {
	case "repro":
		err = repro(&out, lookup(t, b))
	case "md5s":
		arch := buildArch()
		if a, _ := b.Arg("goarch"); a != arch[0] {
			return b.Expected // bit patterns of another machine: kept as they are
		}
		if v, _ := b.Arg("goamd64"); v != arch[1] {
			return b.Expected // bit patterns of another machine: kept as they are
		}
		err = md5s(&out, lookup(t, b))
	case "fixed":
		err = fixed(&out, lookup(t, b))
	case "example":
		e, ok := bugs.LookupExample(b.Args[0])
		if !ok {
			b.Fatalf(t, "no worked example %q", b.Args[0])
		}
		var r *bugs.ExampleResult
		if r, err = e.Run(); err == nil {
			if r.Report != nil {
				blankMD5s(r.Report)
			}
			err = reports.Example(&out, r)
		}
	default:
		b.Fatalf(t, "unknown command %q", b.Cmd)
	}
	if err != nil {
		b.Fatalf(t, "%v", err)
	}
	return strings.TrimLeft(out.String(), "\n")
}

func lookup(t *testing.T, b *scenario.Block) *bugs.Bug {
	t.Helper()
	bug, err := bugs.Lookup(b.Args[0])
	if err != nil {
		b.Fatalf(t, "%v", err)
	}
	return bug
}

// buildArch is the test binary's GOARCH and its GOAMD64 level ("" off amd64).
func buildArch() [2]string {
	arch := [2]string{runtime.GOARCH, ""}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "GOAMD64" {
				arch[1] = s.Value
			}
		}
	}
	return arch
}

func blankMD5s(rep *verify.Report) {
	for _, r := range rep.Results {
		r.RefMD5, r.CandMD5 = "", ""
	}
}

func run(b *bugs.Bug) (*bugs.Outcome, error) {
	if b.Domain == bugs.Serving {
		return bugs.RunServing(b, b.Config())
	}
	return bugs.Run(b, b.MinimalPlan())
}

func repro(w *bytes.Buffer, b *bugs.Bug) error {
	o, err := run(b)
	if err != nil {
		return err
	}
	if o.Serving != nil {
		if err := reports.Serving(w, *o.Serving); err != nil {
			return err
		}
		fmt.Fprintf(w, "\n%s\n", o.Detail)
		return reports.Expectation(w, o)
	}
	if o.Report != nil {
		blankMD5s(o.Report)
	}
	var run bytes.Buffer
	if err := reports.BugRun(&run, o); err != nil {
		return err
	}
	w.WriteString(kernelRank.ReplaceAllString(run.String(), "kernel: rank R "))
	return reports.Expectation(w, o)
}

func md5s(w *bytes.Buffer, b *bugs.Bug) error {
	o, err := run(b)
	if err != nil {
		return err
	}
	if o.Trace == nil {
		fmt.Fprintln(w, "(the run is refused: nothing to hash)")
		return nil
	}
	d, err := o.GradientMD5s()
	if err != nil {
		return err
	}
	return reports.GradientMD5s(w, d)
}

func fixed(w *bytes.Buffer, b *bugs.Bug) error {
	if b.Domain == bugs.Serving {
		cfg := b.Config()
		b.Fixed(&cfg)
		o, err := bugs.RunServing(b, cfg)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s: %s\n", o.Verdict, o.Detail)
		return nil
	}
	p := b.MinimalPlan()
	p.Bug = ""
	rep, err := pipeline.Verify(p, nil, verify.Options{SkipHashes: true})
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "%s: %d tensors, %d identical, %d close, %d failing\n", map[bool]string{true: "verified", false: "FAILED"}[rep.Verified()],
		len(rep.Results), rep.Count(verify.Identical), rep.Count(verify.Close), rep.Failures())
	return nil
}

// bugSkeleton is a bug's scenario file without outputs.
func bugSkeleton(b *bugs.Bug) string {
	arch := buildArch()
	s := fmt.Sprintf("# %s (%s: %s)\n# %s\n# source: %s\n\nrepro %s\n----\n\n", b.Name, b.Class, bugs.ClassTitle[b.Class], b.Summary, b.Source, b.Name)
	if b.Domain == bugs.Training {
		s += fmt.Sprintf("md5s %s goarch=%s goamd64=%s\n----\n\n", b.Name, arch[0], arch[1])
	}
	return s + fmt.Sprintf("fixed %s\n----\n", b.Name)
}

// writeSkeleton creates the scenario file of a bug or example that has none (run once with
// -rewrite to fill in the outputs).
func writeSkeleton(t *testing.T, path, text string) {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}
