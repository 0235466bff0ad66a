package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify/verifytest"
)

// TestScripts runs the CLI scripts testdata/*.txt (package internal/scenario's format): each
// file gets a scratch directory, $TMP, and its blocks run in order.
//
//	spcheck ARGS…        run the command in-process (main's run); the output is "exit N", the
//	                     stdout lines, then the stderr lines prefixed "stderr: ". Optional input
//	                     lines: "grep REGEX" keeps only the lines matching one of them (the key
//	                     lines), "mask REGEX" replaces what matches by "…" (timings, versions).
//	traces NAME          write the traces of verifytest scenario NAME (or "renamed": framework
//	                     names with stage-local indices; "padleak": an activation longer in
//	                     the candidate; "widths": a parameter wider in the candidate) to
//	                     $TMP/NAME/ref and /cand
//	env KEY VALUE        set an environment variable for the rest of the file
//	write PATH           write the input lines to PATH
//	rm PATH              remove a file
//	steps DIR STEP0 STEP1  make DIR a two-step dump (step-000000/, step-000001/) of two traces
//	files DIR            list the files under DIR
//
// Arguments may use $TMP and $TESTDATA (the repository's testdata/); $TMP is written back as
// "$TMP" in the output. go test ./cmd/spcheck -rewrite regenerates the expected outputs.
func TestScripts(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.txt"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts under testdata/: %v", err)
	}
	testdata, err := filepath.Abs(filepath.Join("..", "..", "testdata"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), ".txt"), func(t *testing.T) {
			s := &script{tmp: t.TempDir(), testdata: testdata}
			scenario.RunFile(t, path, s.run)
		})
	}
}

type script struct {
	tmp, testdata string
}

// expand substitutes $TMP and $TESTDATA in an argument.
func (s *script) expand(a string) string {
	return strings.NewReplacer("$TMP", s.tmp, "$TESTDATA", s.testdata).Replace(a)
}

func (s *script) run(t *testing.T, b *scenario.Block) string {
	args := make([]string, len(b.Args))
	for i, a := range b.Args {
		args[i] = s.expand(a)
	}
	need := func(n int) {
		if len(args) != n {
			b.Fatalf(t, "%s takes %d argument(s)", b.Cmd, n)
		}
	}
	switch b.Cmd {
	case "spcheck":
		return s.spcheck(t, b, args)
	case "traces":
		need(1)
		for _, sc := range append(verifytest.All(), renamed(), shapes("padleak", trace.Activation), shapes("widths", trace.Param)) {
			if sc.Name == args[0] {
				dir := filepath.Join(s.tmp, sc.Name)
				if err := sc.Ref.WriteDir(filepath.Join(dir, "ref")); err != nil {
					b.Fatalf(t, "%v", err)
				}
				if err := sc.Cand.WriteDir(filepath.Join(dir, "cand")); err != nil {
					b.Fatalf(t, "%v", err)
				}
				return ""
			}
		}
		b.Fatalf(t, "no verifytest scenario %q", args[0])
	case "env":
		need(2)
		t.Setenv(args[0], args[1])
		return ""
	case "write":
		need(1)
		if err := os.WriteFile(args[0], []byte(b.Input), 0o644); err != nil {
			b.Fatalf(t, "%v", err)
		}
		return ""
	case "rm":
		need(1)
		if err := os.Remove(args[0]); err != nil {
			b.Fatalf(t, "%v", err)
		}
		return ""
	case "steps":
		need(3)
		for i, src := range args[1:] {
			if err := os.CopyFS(filepath.Join(args[0], fmt.Sprintf("step-%06d", i)), os.DirFS(src)); err != nil {
				b.Fatalf(t, "%v", err)
			}
		}
		return ""
	case "files":
		need(1)
		var names []string
		err := filepath.WalkDir(args[0], func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(args[0], path)
				names = append(names, filepath.ToSlash(rel))
			}
			return err
		})
		if err != nil {
			b.Fatalf(t, "%v", err)
		}
		sort.Strings(names)
		return strings.Join(names, "\n")
	}
	b.Fatalf(t, "unknown script command %q", b.Cmd)
	return ""
}

// spcheck runs one command and renders its exit code and (filtered) output.
func (s *script) spcheck(t *testing.T, b *scenario.Block, args []string) string {
	var greps, masks []*regexp.Regexp
	for _, l := range strings.Split(strings.TrimSuffix(b.Input, "\n"), "\n") {
		if l == "" {
			continue
		}
		verb, re, ok := strings.Cut(l, " ")
		rx, err := regexp.Compile(re)
		switch {
		case !ok || (verb != "grep" && verb != "mask"):
			b.Fatalf(t, "input line %q: want grep REGEX or mask REGEX", l)
		case err != nil:
			b.Fatalf(t, "%s: %v", l, err)
		case verb == "grep":
			greps = append(greps, rx)
		default:
			masks = append(masks, rx)
		}
	}
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	out := []string{fmt.Sprintf("exit %d", code)}
	add := func(text, prefix string) {
		for _, l := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
			if text == "" || !keep(l, greps) {
				continue
			}
			l = strings.ReplaceAll(l, s.tmp, "$TMP")
			for _, m := range masks {
				l = m.ReplaceAllString(l, "…")
			}
			out = append(out, strings.TrimRight(prefix+l, " "))
		}
	}
	add(stdout.String(), "")
	add(stderr.String(), "stderr: ")
	return strings.Join(out, "\n")
}

// runCmd runs one command in-process: its exit code, stdout and stderr.
func runCmd(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return code, out.String(), errb.String()
}

// keep reports whether a line is kept: every line without greps, else lines matching one.
func keep(l string, greps []*regexp.Regexp) bool {
	if len(greps) == 0 {
		return true
	}
	for _, g := range greps {
		if g.MatchString(l) {
			return true
		}
	}
	return false
}

// renamed is a candidate whose tensors carry framework names with stage-local indices.
func renamed() verifytest.Scenario {
	s := verifytest.Clean()
	ref := verifytest.Single("ref", verifytest.Provenance{})
	cand := verifytest.TP("cand", 2, verifytest.Provenance{})
	for i := 0; i < 2; i++ {
		name := "act/layers." + string(rune('0'+i)) + ".out"
		ref.Add(0, "x"+name, verifytest.Meta(name, "activation", i, ""), 2, []int{1}, float64(i))
		cand.Add(i, "x", verifytest.Meta("fw.layer0", "activation", i, "tp=stage"), 2, []int{1}, float64(i))
	}
	s.Name, s.Ref, s.Cand = "renamed", ref, cand
	return s
}

// shapes is a pair of plan-less traces (as a framework dump writes them) where one tensor of
// the given kind is one element longer in the candidate, the others equal.
func shapes(name string, kind trace.Kind) verifytest.Scenario {
	s := verifytest.Clean()
	ref := verifytest.Single("ref", verifytest.Provenance{})
	cand := verifytest.Single("cand", verifytest.Provenance{})
	ref.Add(0, "w", verifytest.Meta("param/w", trace.Param, 0, ""), 2, []int{2}, 1, 2)
	cand.Add(0, "w", verifytest.Meta("param/w", trace.Param, 0, ""), 2, []int{2}, 1, 2)
	ref.Add(0, "x", verifytest.Meta("act/x", trace.Activation, 1, ""), 2, []int{2}, 3, 4)
	cand.Add(0, "x", verifytest.Meta("act/x", trace.Activation, 1, ""), 2, []int{2}, 3, 4)
	ref.Add(0, "y", verifytest.Meta("odd", kind, 2, ""), 2, []int{2}, 5, 6)
	cand.Add(0, "y", verifytest.Meta("odd", kind, 2, ""), 2, []int{3}, 5, 6, 0)
	s.Name, s.Ref, s.Cand = name, ref, cand
	return s
}
