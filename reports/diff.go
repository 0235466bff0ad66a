package reports

import (
	"fmt"
	"io"

	"github.com/spcheck/spcheck/internal/buildinfo"
	"github.com/spcheck/spcheck/verify"
)

// DiffText renders an A/B diff: one row per tensor with both MD5s.
func DiffText(w io.Writer, d *verify.DiffReport) error {
	p := newText(w)
	p.line("spcheck diff: %s", d.Summary())
	p.line("A: %s", traceLine(d.A))
	p.line("B: %s", traceLine(d.B))
	p.line("")
	t := newTable(w)
	t.Header("order", "name", "kind", "shape", "md5 A", "md5 B", "equal")
	for _, e := range d.Entries {
		t.Append(fmt.Sprint(e.Order), e.Name, string(e.Kind), fmt.Sprint(e.Shape), dash(e.MD5A), dash(e.MD5B), equalWord(e))
	}
	if err := t.Render(); err != nil {
		return err
	}
	if !d.Same() && d.Command != "" {
		p.line("\nreproduce:\n  %s", d.Command)
	}
	p.line("\n%s", versionLine())
	return p.err
}

// DiffMarkdown renders an A/B diff as Markdown.
func DiffMarkdown(w io.Writer, d *verify.DiffReport) error {
	p := &printer{w: w}
	p.line("## spcheck diff: %s", mdEscape(d.Summary()))
	p.line("")
	p.line("- A: %s", mdCode(traceLine(d.A)))
	p.line("- B: %s", mdCode(traceLine(d.B)))
	p.line("")
	mdRow(p, "order", "name", "kind", "shape", "md5 A", "md5 B", "equal")
	mdRow(p, "---", "---", "---", "---", "---", "---", "---")
	for _, e := range d.Entries {
		mdRow(p, fmt.Sprint(e.Order), "`"+e.Name+"`", string(e.Kind), fmt.Sprint(e.Shape), "`"+dash(e.MD5A)+"`", "`"+dash(e.MD5B)+"`", equalWord(e))
	}
	if !d.Same() && d.Command != "" {
		p.line("")
		p.line("Reproduce: `%s`", d.Command)
	}
	p.line("")
	p.line("<sub>%s</sub>", mdEscape(versionLine()))
	return p.err
}

func equalWord(e verify.DiffEntry) string {
	switch {
	case e.MD5A == "":
		return "only in B"
	case e.MD5B == "":
		return "only in A"
	case e.Equal():
		return "yes"
	}
	return "NO"
}

type jDiff struct {
	Schema  string       `json:"schema"`
	Version string       `json:"spcheck_version"`
	Same    bool         `json:"same"`
	Summary string       `json:"summary"`
	Command string       `json:"command"`
	A       jTrace       `json:"a"`
	B       jTrace       `json:"b"`
	Kinds   []string     `json:"kinds"`
	Tensors []jDiffEntry `json:"tensors"`
}

type jDiffEntry struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Order int    `json:"order"`
	Shape []int  `json:"shape"`
	MD5A  string `json:"md5_a"`
	MD5B  string `json:"md5_b"`
	Equal bool   `json:"equal"`
}

// DiffJSON renders an A/B diff as JSON (schema spcheck-diff/1, docs/report-json.md).
func DiffJSON(w io.Writer, d *verify.DiffReport) error {
	doc := jDiff{Schema: DiffSchema, Version: buildinfo.Version(), Same: d.Same(), Summary: d.Summary(), Command: d.Command, A: jTraceOf(d.A), B: jTraceOf(d.B),
		Kinds: []string{}, Tensors: []jDiffEntry{}}
	for _, k := range d.Kinds {
		doc.Kinds = append(doc.Kinds, string(k))
	}
	for _, e := range d.Entries {
		shape := e.Shape
		if shape == nil {
			shape = []int{}
		}
		doc.Tensors = append(doc.Tensors, jDiffEntry{Name: e.Name, Kind: string(e.Kind), Order: e.Order, Shape: shape,
			MD5A: e.MD5A, MD5B: e.MD5B, Equal: e.Equal()})
	}
	return encode(w, doc)
}
