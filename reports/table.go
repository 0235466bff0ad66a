package reports

import (
	"bytes"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
)

// Width is the terminal width every text report fits: tables wrap their cells to it and prose
// lines wrap at spaces (a command line, which must stay pasteable, is never broken).
const Width = 120

// termTable is a terminal table whose headers are printed as given (not upper-cased). It is
// rendered at its natural width when that fits Width, else again with its cells wrapped at
// spaces to fit (tablewriter may exceed its MaxWidth by a column, so it is given one less).
type termTable struct {
	w      io.Writer
	header []string
	rows   [][]string
}

func newTable(w io.Writer) *termTable { return &termTable{w: w} }

// Header sets the column titles.
func (t *termTable) Header(cells ...string) { t.header = cells }

// Append adds a row.
func (t *termTable) Append(cells ...string) { t.rows = append(t.rows, cells) }

// Render writes the table.
func (t *termTable) Render() error {
	var b bytes.Buffer
	if err := t.render(&b); err != nil {
		return err
	}
	if widest(b.String()) > Width {
		b.Reset()
		if err := t.render(&b, tablewriter.WithMaxWidth(Width-1), tablewriter.WithRowAutoWrap(tw.WrapNormal)); err != nil {
			return err
		}
	}
	_, err := t.w.Write(b.Bytes())
	return err
}

func (t *termTable) render(w io.Writer, opts ...tablewriter.Option) error {
	tt := tablewriter.NewTable(w, append([]tablewriter.Option{tablewriter.WithHeaderAutoFormat(tw.Off)}, opts...)...)
	tt.Header(t.header)
	for _, r := range t.rows {
		if err := tt.Append(r); err != nil {
			return err
		}
	}
	return tt.Render()
}

// widest is the width in runes of the longest line of s.
func widest(s string) int {
	n := 0
	for _, l := range strings.Split(s, "\n") {
		n = max(n, utf8.RuneCountInString(l))
	}
	return n
}

// table renders one terminal table.
func table(w io.Writer, header []string, rows [][]string) error {
	t := newTable(w)
	t.Header(header...)
	for _, r := range rows {
		t.Append(r...)
	}
	return t.Render()
}
