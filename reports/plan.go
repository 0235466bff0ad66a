package reports

import (
	"fmt"
	"io"

	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/ir"
)

// Plan describes a compiled plan: its plan string and layout, then one row per rank
// (coordinates and op counts by class), or, for rank ≥ 0, that rank's ops one per line.
func Plan(w io.Writer, c *simulate.Compiled, rank int) error {
	p := newText(w)
	p.line("--plan '%s'\n%s", c.Plan, c.Describe())
	if p.err != nil {
		return p.err
	}
	if rank >= 0 {
		for i, o := range c.Programs[rank].Ops {
			p.line("%5d  %s", i, o.String())
		}
		return p.err
	}
	var rows [][]string
	for r, prog := range c.Programs {
		n := map[ir.Class]int{}
		traced := 0
		for _, o := range prog.Ops {
			if o.Op == ir.OpTrace {
				traced++
			}
			if o.Op != ir.OpFree {
				n[ir.Specs[o.Op].Class]++
			}
		}
		rows = append(rows, []string{fmt.Sprint(r), fmt.Sprint(prog.Coord["dp"]), fmt.Sprint(prog.Coord["pp"]), fmt.Sprint(prog.Coord["tp"]),
			fmt.Sprint(len(prog.Ops)), fmt.Sprint(n[ir.Local]), fmt.Sprint(n[ir.Collective]), fmt.Sprint(n[ir.PointToPoint]),
			fmt.Sprint(traced), fmt.Sprint(len(prog.Inputs))})
	}
	return table(w, []string{"rank", "dp", "pp", "tp", "ops", "local", "collectives", "p2p", "traced", "inputs"}, rows)
}
