package bugs

import (
	"fmt"
	"maps"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/ir"
	simrt "github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// mini is a tiny hand-written set of per-rank programs on a dp × pp × tp mesh (ranks row-major,
// tp innermost, as the planner numbers them), so that a worked example runs its hand-worked
// numbers through the simulator's runtime and the catalogue's rewrites.
type mini struct {
	c     *simulate.Compiled
	order int
}

// MiniProducer is the trace producer of the worked examples.
const MiniProducer = "spcheck-example"

func newMini(pp, tp int, planStr string) *mini {
	p, err := plan.Parse(planStr)
	if err != nil {
		panic(fmt.Sprintf("bugs: example plan %q: %v", planStr, err))
	}
	m := &mini{c: &simulate.Compiled{Plan: p}}
	world := pp * tp
	for r := 0; r < world; r++ {
		m.c.Programs = append(m.c.Programs, &ir.Program{Format: ir.Format, Version: ir.Version, Plan: planStr, Rank: r, World: world,
			Mesh:  ir.Mesh{Axes: []string{simulate.AxisDP, simulate.AxisPP, simulate.AxisTP}, Shape: []int{1, pp, tp}},
			Coord: map[string]int{simulate.AxisDP: 0, simulate.AxisPP: r / tp, simulate.AxisTP: r % tp}})
		m.c.Init = append(m.c.Init, map[string]*tensor.Dense{})
	}
	return m
}

// input gives rank r a starting tensor.
func (m *mini) input(r int, sym string, shape []int, data ...float64) {
	m.c.Programs[r].Inputs = append(m.c.Programs[r].Inputs, sym)
	m.c.Init[r][sym] = tensor.FromData(shape, data)
}

// op appends ops to rank r's program.
func (m *mini) op(r int, ops ...ir.Op) { m.c.Programs[r].Ops = append(m.c.Programs[r].Ops, ops...) }

// tp is rank r's TP group.
func (m *mini) tp(r int) *ir.Group { return simulate.TPGroupOf(m.c.Programs[r]) }

// trace appends, on each of ranks, a trace of sym as name (global shape, placement place); the
// order is the same on every rank and increases with each call.
func (m *mini) trace(ranks []int, sym, name, kind, place string, shape ...int) {
	for _, r := range ranks {
		m.op(r, ir.Op{Op: ir.OpTrace, In: []string{sym},
			Trace: &ir.Tag{Key: name, Name: name, Kind: kind, Order: m.order, Place: place, Shape: shape}})
	}
	m.order++
}

// run applies rewrite (if any), places the frees, executes the programs and returns the traced
// tensors and the trace they make.
func (m *mini) run(rewrite func(c *simulate.Compiled) error) (*simrt.Result, *trace.Trace, error) {
	if rewrite != nil {
		if err := rewrite(m.c); err != nil {
			return nil, nil, err
		}
	}
	for _, p := range m.c.Programs {
		ir.StripFrees(p)
		ir.InsertFrees(p)
	}
	res, err := simrt.Run(m.c.Programs, m.c.Init)
	if err != nil {
		return nil, nil, err
	}
	files := make([]*trace.File, len(res.Traces))
	for r, traced := range res.Traces {
		p := m.c.Programs[r]
		w := trace.NewWriter(trace.Meta{Rank: r, World: p.World, Mesh: trace.Mesh{Axes: p.Mesh.Axes, Shape: p.Mesh.Shape},
			Coord: maps.Clone(p.Coord), Producer: MiniProducer, Plan: p.Plan, Seed: m.c.Plan.Seed})
		for _, t := range traced {
			tm := trace.TensorMeta{Name: t.Tag.Name, Kind: trace.Kind(t.Tag.Kind), Order: t.Tag.Order, Place: t.Tag.Place, Shape: t.Tag.Shape}
			if err := w.Add(t.Tag.Key, tm, tensor.F64, t.T); err != nil {
				return nil, nil, err
			}
		}
		if files[r], err = w.File(trace.FileName(r)); err != nil {
			return nil, nil, err
		}
	}
	tr, err := trace.New(MiniProducer, files)
	return res, tr, err
}

// tensorOf is what rank r traced under key.
func tensorOf(res *simrt.Result, r int, key string) *tensor.Dense {
	for _, t := range res.Traces[r] {
		if t.Tag.Key == key {
			return t.T
		}
	}
	return nil
}
