package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/olekukonko/tablewriter"
	"github.com/olekukonko/tablewriter/tw"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

func init() {
	register(&command{name: "inspect", summary: "list every tensor of a trace: rank, name, kind, shape, dtype, placement, MD5", run: runInspect})
}

func runInspect(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("inspect", "TRACE_DIR", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return exitBadInput
	}
	tr, err := trace.OpenDir(fs.Arg(0))
	if err != nil {
		return fail(stderr, "inspect", err)
	}
	defer tr.Close()
	m := tr.Files[0].Meta
	fmt.Fprintf(stdout, "trace %s: world %d, mesh [%s], producer %s\n", tr.Dir, m.World, m.Mesh, m.Producer)
	if m.Plan != "" {
		fmt.Fprintf(stdout, "plan: %s\n", m.Plan)
	}
	table := tablewriter.NewTable(stdout, tablewriter.WithHeaderAutoFormat(tw.Off))
	table.Header("rank", "order", "name", "kind", "shape", "dtype", "placement", "md5")
	for _, f := range tr.Files {
		for _, e := range f.Entries {
			raw, err := f.Raw(e)
			if err != nil {
				return fail(stderr, "inspect", err)
			}
			place := e.Meta.Place
			if place == "" {
				place = "-"
			}
			table.Append(fmt.Sprint(f.Meta.Rank), fmt.Sprint(e.Meta.Order), e.Meta.Name+coordSuffix(e.Meta.Coord), string(e.Meta.Kind),
				shapeString(e.Shape), e.DType.String(), place, tensor.MD5Bytes(raw))
		}
	}
	if err := table.Render(); err != nil {
		return fail(stderr, "inspect", err)
	}
	return exitOK
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

func shapeString(s []int) string {
	parts := make([]string, len(s))
	for i, d := range s {
		parts[i] = fmt.Sprint(d)
	}
	return "[" + strings.Join(parts, ",") + "]"
}
