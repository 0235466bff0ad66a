package reports

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Inspect lists every tensor of a trace, rank by rank in file order: its order, name (with its
// per-tensor coordinates), kind, shape, dtype, placement and the MD5 of its stored bytes.
func Inspect(w io.Writer, tr *trace.Trace) error {
	p := newText(w)
	m := tr.Files[0].Meta
	p.line("trace %s: world %d, mesh [%s], producer %s", tr.Dir, m.World, m.Mesh, m.Producer)
	if m.Plan != "" {
		p.line("plan: %s", m.Plan)
	}
	if p.err != nil {
		return p.err
	}
	var rows [][]string
	for _, f := range tr.Files {
		for _, e := range f.Entries {
			raw, err := f.Raw(e)
			if err != nil {
				return err
			}
			rows = append(rows, []string{fmt.Sprint(f.Meta.Rank), fmt.Sprint(e.Meta.Order), e.Meta.Name + coordSuffix(e.Meta.Coord),
				string(e.Meta.Kind), shapeString(e.Shape), e.DType.String(), dash(e.Meta.Place), tensor.MD5Bytes(raw)})
		}
	}
	return table(w, []string{"rank", "order", "name", "kind", "shape", "dtype", "placement", "md5"}, rows)
}

// coordSuffix shows a tensor's per-tensor coordinates (e.g. its micro-batch) after its name.
func coordSuffix(c map[string]int) string {
	if len(c) == 0 {
		return ""
	}
	var parts []string
	for _, axis := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s=%d", axis, c[axis]))
	}
	return " @" + strings.Join(parts, ",")
}

// shapeString is "[2,3]".
func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}
