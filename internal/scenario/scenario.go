package scenario

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

var rewrite = flag.Bool("rewrite", false, "regenerate the expected output of scenario and golden files under testdata/ (review with git diff)")

// Rewriting reports whether the test binary runs under -rewrite.
func Rewriting() bool { return *rewrite }

// separator opens a block's expected output; doubled, it brackets output with blank lines.
const separator = "----"

// Block is one command of a scenario file.
type Block struct {
	Pos      string   // file:line of the command, for messages
	Line     string   // the command line as written
	Cmd      string   // the command's first word
	Args     []string // the remaining words (double or single quotes group words)
	Input    string   // lines between the command and the separator, newline-terminated
	Expected string   // the expected output, newline-terminated ("" when empty)

	outStart, outEnd int // the expected output's lines, separator included: [outStart, outEnd)
}

// Arg returns the value of a key=value argument and whether it was given.
func (b *Block) Arg(key string) (string, bool) {
	for _, a := range b.Args {
		if k, v, ok := strings.Cut(a, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

// Fatalf stops the test with a message that names the block.
func (b *Block) Fatalf(t testing.TB, format string, args ...any) {
	t.Helper()
	t.Fatalf("%s: %s: %s", b.Pos, b.Line, fmt.Sprintf(format, args...))
}

// Run runs every file matching testdata/pattern (e.g. "*.txt") as a subtest named after the file.
func Run(t *testing.T, pattern string, f func(t *testing.T, b *Block) string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", pattern))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatalf("no scenario files match testdata/%s", pattern)
	}
	sort.Strings(files)
	for _, path := range files {
		t.Run(strings.TrimSuffix(filepath.Base(path), filepath.Ext(path)), func(t *testing.T) {
			RunFile(t, path, f)
		})
	}
}

// RunFile runs the blocks of one scenario file in order. Without -rewrite every block's output
// is compared with the expected one; under -rewrite the file is rewritten with the outputs.
func RunFile(t *testing.T, path string, f func(t *testing.T, b *Block) string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines, blocks, err := Parse(path, string(data))
	if err != nil {
		t.Fatal(err)
	}
	got := make([]string, len(blocks))
	for i, b := range blocks {
		out := f(t, b)
		if out != "" && !strings.HasSuffix(out, "\n") {
			out += "\n"
		}
		got[i] = out
		if !*rewrite && out != b.Expected {
			t.Errorf("%s: %s: output differs (go test -rewrite regenerates it; review with git diff):\n%s",
				b.Pos, b.Line, Diff(b.Expected, out))
		}
	}
	if *rewrite {
		updated := render(lines, blocks, got)
		if updated != string(data) {
			if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// Parse splits a scenario file into its lines and blocks; name is used in positions and errors.
func Parse(name, data string) ([]string, []*Block, error) {
	lines := strings.SplitAfter(data, "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	text := func(i int) string { return strings.TrimRight(lines[i], "\r\n") }
	var blocks []*Block
	for i := 0; i < len(lines); {
		l := strings.TrimSpace(text(i))
		if l == "" || strings.HasPrefix(l, "#") {
			i++
			continue
		}
		b := &Block{Pos: fmt.Sprintf("%s:%d", name, i+1), Line: l}
		words, err := splitArgs(l)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %v", b.Pos, err)
		}
		b.Cmd, b.Args = words[0], words[1:]
		i++
		var input strings.Builder
		for i < len(lines) && text(i) != separator {
			if strings.TrimSpace(text(i)) == "" {
				return nil, nil, fmt.Errorf("%s: command %q has no %q line before its blank line %d", b.Pos, l, separator, i+1)
			}
			input.WriteString(text(i) + "\n")
			i++
		}
		if i == len(lines) {
			return nil, nil, fmt.Errorf("%s: command %q has no %q line", b.Pos, l, separator)
		}
		b.Input = input.String()
		b.outStart = i
		i++
		var out strings.Builder
		if i < len(lines) && text(i) == separator {
			// Doubled form: the output runs to the next doubled separator.
			i++
			closed := false
			for ; i < len(lines); i++ {
				if text(i) == separator && i+1 < len(lines) && text(i+1) == separator {
					i += 2
					closed = true
					break
				}
				out.WriteString(text(i) + "\n")
			}
			if !closed {
				return nil, nil, fmt.Errorf("%s: output opened with a doubled %q is never closed by one", b.Pos, separator)
			}
		} else {
			for ; i < len(lines) && strings.TrimSpace(text(i)) != ""; i++ {
				out.WriteString(text(i) + "\n")
			}
		}
		b.outEnd = i
		b.Expected = out.String()
		blocks = append(blocks, b)
	}
	return lines, blocks, nil
}

// render rebuilds a scenario file with new outputs, keeping every other line as it was.
func render(lines []string, blocks []*Block, outs []string) string {
	var s strings.Builder
	next := 0
	for i, b := range blocks {
		for _, l := range lines[next:b.outStart] {
			s.WriteString(l)
		}
		s.WriteString(formatOutput(outs[i]))
		next = b.outEnd
		if next < len(lines) && strings.TrimSpace(lines[next]) != "" {
			s.WriteString("\n") // a blank line must end the new output before what follows
		}
	}
	for _, l := range lines[next:] {
		s.WriteString(l)
	}
	return s.String()
}

// formatOutput writes out after its separator, doubling the separators when the output holds a
// blank line or a separator line of its own.
func formatOutput(out string) string {
	if out == "" {
		return separator + "\n"
	}
	doubled := false
	for _, l := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		if strings.TrimSpace(l) == "" || l == separator {
			doubled = true
		}
	}
	if doubled {
		return separator + "\n" + separator + "\n" + out + separator + "\n" + separator + "\n"
	}
	return separator + "\n" + out
}

// splitArgs splits a command line into words; double or single quotes group a word.
func splitArgs(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '"' || r == '\'':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, line)
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}
