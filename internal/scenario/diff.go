package scenario

import (
	"strings"
)

// Diff returns a line diff from want to got: unchanged lines indented by two spaces, removed
// lines prefixed "- ", added lines "+ ". Long runs of unchanged lines are elided.
func Diff(want, got string) string {
	a := splitLines(want)
	b := splitLines(got)
	// Longest common subsequence by dynamic programming: outputs are small.
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type line struct {
		op   byte
		text string
	}
	var ls []line
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ls = append(ls, line{' ', a[i]})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ls = append(ls, line{'-', a[i]})
			i++
		default:
			ls = append(ls, line{'+', b[j]})
			j++
		}
	}
	const context = 3
	near := func(k int) bool {
		for d := max(0, k-context); d <= min(len(ls)-1, k+context); d++ {
			if ls[d].op != ' ' {
				return true
			}
		}
		return false
	}
	var s strings.Builder
	skipped := false
	for k, l := range ls {
		if l.op == ' ' && !near(k) {
			if !skipped {
				s.WriteString("  ...\n")
				skipped = true
			}
			continue
		}
		skipped = false
		s.WriteByte(l.op)
		s.WriteByte(' ')
		s.WriteString(l.text)
		s.WriteByte('\n')
	}
	if want != "" && got != "" && !strings.HasSuffix(want, "\n") != !strings.HasSuffix(got, "\n") {
		s.WriteString("(the two differ in their final newline)\n")
	}
	return s.String()
}

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(strings.TrimSuffix(s, "\n"), "\n")
}
