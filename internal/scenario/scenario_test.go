package scenario

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// example is the command interpreter of testdata/example.txt.
func example(t *testing.T, b *Block) string {
	switch b.Cmd {
	case "echo":
		return strings.Join(b.Args, "\n")
	case "upper":
		return strings.ToUpper(b.Input)
	case "paragraphs":
		return strings.Join(b.Args, "\n\n----\n")
	case "empty":
		return ""
	}
	b.Fatalf(t, "unknown command %q", b.Cmd)
	return ""
}

func TestExample(t *testing.T) { Run(t, "example.txt", example) }

func TestParse(t *testing.T) {
	data, err := os.ReadFile("testdata/example.txt")
	if err != nil {
		t.Fatal(err)
	}
	lines, blocks, err := Parse("example.txt", string(data))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, b := range blocks {
		got = append(got, fmt.Sprintf("%s %s %q %q %q", b.Pos, b.Cmd, b.Args, b.Input, b.Expected))
	}
	want := []string{
		`example.txt:3 echo ["one" "two words" "key=value"] "" "one\ntwo words\nkey=value\n"`,
		`example.txt:9 upper [] "some input\nmore input\n" "SOME INPUT\nMORE INPUT\n"`,
		`example.txt:17 paragraphs ["a" "b"] "" "a\n\n----\nb\n"`,
		`example.txt:27 empty [] "" ""`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("blocks:\n%s", Diff(strings.Join(want, "\n"), strings.Join(got, "\n")))
	}
	if v, ok := blocks[0].Arg("key"); !ok || v != "value" {
		t.Errorf("Arg(key) = %q, %v; want value, true", v, ok)
	}
	if _, ok := blocks[0].Arg("missing"); ok {
		t.Error("Arg(missing) found")
	}
	// Rendering the expected outputs back reproduces the file byte for byte.
	outs := make([]string, len(blocks))
	for i, b := range blocks {
		outs[i] = b.Expected
	}
	if r := render(lines, blocks, outs); r != string(data) {
		t.Errorf("render changed the file:\n%s", Diff(string(data), r))
	}
}

func TestParseErrors(t *testing.T) {
	for _, c := range Cases(t, []struct{ in, want, reason string }{
		{"cmd\n", `f:1: command "cmd" has no "----" line`, "a command at the end of the file needs its separator"},
		{"cmd\n\n----\nx\n", `f:1: command "cmd" has no "----" line before its blank line 2`, "a blank line cannot sit between a command and its separator"},
		{"cmd\n----\n----\nx\n", `f:1: output opened with a doubled "----" is never closed by one`, "a doubled separator must be closed"},
		{"cmd \"open\n----\n", `f:1: unterminated " quote in "cmd \"open"`, "quotes must be closed"},
	}) {
		_, _, err := Parse("f", c.in)
		if err == nil || err.Error() != c.want {
			t.Errorf("%s: Parse(%q) = %v; want %s", c.reason, c.in, err, c.want)
		}
	}
}

func TestFormatOutput(t *testing.T) {
	for _, c := range Cases(t, []struct{ out, want, reason string }{
		{"", "----\n", "no output is a bare separator"},
		{"x\ny\n", "----\nx\ny\n", "plain lines follow one separator"},
		{"x\n\ny\n", "----\n----\nx\n\ny\n----\n----\n", "a blank line would end plain output early"},
		{"x\n----\n", "----\n----\nx\n----\n----\n----\n", "a separator line inside output needs the doubled form"},
	}) {
		if got := formatOutput(c.out); got != c.want {
			t.Errorf("%s: formatOutput(%q) = %q; want %q", c.reason, c.out, got, c.want)
		}
	}
}

func TestDiff(t *testing.T) {
	got := Diff("a\nb\nc\n", "a\nB\nc\nd\n")
	want := "  a\n- b\n+ B\n  c\n+ d\n"
	if got != want {
		t.Errorf("Diff = %q; want %q", got, want)
	}
	long := strings.Repeat("same\n", 20)
	if d := Diff(long+"x\n", long+"y\n"); !strings.HasPrefix(d, "  ...\n") || strings.Count(d, "same") != 3 {
		t.Errorf("long unchanged runs are not elided to three lines of context:\n%s", d)
	}
}

// recorder is a testing.TB that records failures instead of failing.
type recorder struct {
	testing.TB
	errors []string
	fatal  bool
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.Errorf(format, args...)
	r.fatal = true
}

func TestCasesNeedReasons(t *testing.T) {
	type tc struct{ in, reason string }
	r := &recorder{TB: t}
	Cases(r, []tc{{"a", "first"}, {"b", ""}, {"c", "  "}})
	if len(r.errors) != 2 || !strings.Contains(r.errors[0], "table case 1 has no reason") ||
		!strings.Contains(r.errors[0], `in="b"`) || !strings.Contains(r.errors[1], "table case 2") {
		t.Errorf("want cases 1 and 2 to fail for their empty reasons, got %q", r.errors)
	}
	r = &recorder{TB: t}
	Cases(r, []tc{{"a", "first"}, {"b", "second"}})
	if len(r.errors) != 0 {
		t.Errorf("cases with reasons failed: %q", r.errors)
	}
	r = &recorder{TB: t}
	Cases(r, []struct{ in string }{{"a"}})
	if !r.fatal || !strings.Contains(r.errors[0], "no string field named reason") {
		t.Errorf("a case type without a reason field must stop the test, got %q", r.errors)
	}
	r = &recorder{TB: t}
	Cases(r, []*struct{ Reason string }{{"exported and behind a pointer"}})
	if len(r.errors) != 0 {
		t.Errorf("a pointer case with an exported Reason failed: %q", r.errors)
	}
}

// The tests below run this test binary again on a scratch file, as a user would run go test,
// so that a failing comparison and -rewrite are seen from the outside.

const helperEnv = "SCENARIO_HELPER_FILE"

// TestHelperProcess is the child: it runs the scenario or golden file named by the environment.
func TestHelperProcess(t *testing.T) {
	path := os.Getenv(helperEnv)
	if path == "" {
		t.Skip("run by TestMismatchFailsAndRewriteRewrites")
	}
	if strings.HasSuffix(path, ".golden") {
		Golden(t, path, []byte("line one\nline two\n"))
		return
	}
	RunFile(t, path, example)
}

func child(t *testing.T, path string, args ...string) (string, error) {
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^TestHelperProcess$", "-test.count=1"}, args...)...)
	cmd.Env = append(os.Environ(), helperEnv+"="+path)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestMismatchFailsAndRewriteRewrites(t *testing.T) {
	good, err := os.ReadFile("testdata/example.txt")
	if err != nil {
		t.Fatal(err)
	}
	// Stale outputs: a changed line, a missing doubled form, and an output that should be empty.
	stale := strings.Replace(string(good), "two words\n", "2 words\n", 1)
	stale = strings.Replace(stale, "----\n----\na\n\n----\nb\n----\n----\n", "----\nold\n", 1)
	stale = strings.Replace(stale, "empty\n----\n", "empty\n----\nnot empty\n", 1)
	path := filepath.Join(t.TempDir(), "stale.txt")
	if err := os.WriteFile(path, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := child(t, path)
	if err == nil {
		t.Fatalf("stale scenario file passed:\n%s", out)
	}
	for _, want := range []string{
		path + ":3: echo one \"two words\" key=value: output differs",
		"- 2 words\n", "+ two words\n",
		path + ":17: paragraphs a b", "- old\n",
		path + ":21: empty", "- not empty\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("failure output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, ":9: upper") {
		t.Errorf("the unchanged block was reported:\n%s", out)
	}
	if out, err := child(t, path, "-rewrite"); err != nil {
		t.Fatalf("-rewrite failed: %v\n%s", err, out)
	}
	rewritten, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(rewritten) != string(good) {
		t.Errorf("-rewrite did not restore the file:\n%s", Diff(string(good), string(rewritten)))
	}
	if out, err := child(t, path); err != nil {
		t.Errorf("the rewritten file fails: %v\n%s", err, out)
	}

	golden := filepath.Join(t.TempDir(), "sub", "x.golden")
	if out, err := child(t, golden); err == nil || !strings.Contains(out, "go test -rewrite creates it") {
		t.Errorf("a missing golden file passed or gave no hint: %v\n%s", err, out)
	}
	if out, err := child(t, golden, "-rewrite"); err != nil {
		t.Fatalf("-rewrite of a golden file failed: %v\n%s", err, out)
	}
	if out, err := child(t, golden); err != nil {
		t.Errorf("the rewritten golden file fails: %v\n%s", err, out)
	}
	if err := os.WriteFile(golden, []byte("line one\nline 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := child(t, golden); err == nil || !strings.Contains(out, "- line 2\n") || !strings.Contains(out, "+ line two\n") {
		t.Errorf("a stale golden file passed or gave no diff: %v\n%s", err, out)
	}
}
