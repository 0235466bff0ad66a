package reports

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// Inspect lists every tensor of a trace, rank by rank in file order: its order, name (with its
// per-tensor coordinates), kind, shape, dtype, placement and the MD5 of its stored bytes (for a
// fingerprint, "fp" and its equality hash).
func Inspect(w io.Writer, tr *trace.Trace) error {
	p := newText(w)
	m := tr.Files[0].Meta
	p.line("trace %s: world %d, mesh [%s], producer %s", tr.Dir, m.World, m.Mesh, producer(verify.TraceInfo{Producer: m.Producer, ProducerVersion: m.ProducerVersion}))
	if m.Plan != "" {
		p.line("plan: %s", m.Plan)
	}
	if p.err != nil {
		return p.err
	}
	var rows [][]string
	for _, f := range tr.Files {
		for _, e := range f.Entries {
			hash, err := inspectHash(f, e)
			if err != nil {
				return err
			}
			rows = append(rows, []string{fmt.Sprint(f.Meta.Rank), fmt.Sprint(e.Meta.Order), e.Meta.Name + coordSuffix(e.Meta.Coord),
				string(e.Meta.Kind), shapeString(e.Shape), e.DType.String(), dash(e.Meta.Place), hash})
		}
	}
	return table(w, []string{"rank", "order", "name", "kind", "shape", "dtype", "placement", "md5"}, rows)
}

// inspectHash is the MD5 of a tensor's stored bytes, or for a fingerprint "fp " and its
// equality hash (its record read and checked, so inspect reports a damaged one).
func inspectHash(f *trace.File, e *trace.Entry) (string, error) {
	if e.IsFingerprint() {
		fp, err := f.Fingerprint(e)
		if err != nil {
			return "", err
		}
		return "fp " + fp.HashString(), nil
	}
	raw, err := f.Raw(e)
	if err != nil {
		return "", err
	}
	return tensor.MD5Bytes(raw), nil
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
