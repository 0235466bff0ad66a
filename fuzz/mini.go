package fuzz

import (
	"fmt"
	"slices"

	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/tensor"
)

// mini builds small per-rank programs over `stages` pipeline stages of one n-rank TP group
// each (rank = stage·n + t), runs them on the simulator's runtime and returns what they
// traced: the collective algebra executes the very ops the planner emits, with the runtime's
// NCCL semantics, on random values.
type mini struct {
	n, stages int
	progs     []*ir.Program
	init      []map[string]*tensor.Dense
	nsym      int
}

// gval is a distributed value being built: one symbol and local shape per group rank of a
// stage ("" and nil where a rank holds nothing, e.g. a broadcast's non-roots).
type gval struct {
	stage  int
	syms   []string
	shapes [][]int
}

func newMini(n, stages int) *mini {
	m := &mini{n: n, stages: stages}
	world := n * stages
	for r := 0; r < world; r++ {
		m.progs = append(m.progs, &ir.Program{Format: ir.Format, Version: ir.Version, Rank: r, World: world,
			Mesh: ir.Mesh{Axes: []string{"pp", "tp"}, Shape: []int{stages, n}}, Coord: map[string]int{"pp": r / n, "tp": r % n}})
		m.init = append(m.init, map[string]*tensor.Dense{})
	}
	return m
}

func (m *mini) rank(stage, t int) int { return stage*m.n + t }

func (m *mini) sym(hint string) string {
	m.nsym++
	return fmt.Sprintf("%s#%d", hint, m.nsym)
}

func (m *mini) group(stage int) *ir.Group {
	g := &ir.Group{Name: "tp"}
	for t := 0; t < m.n; t++ {
		g.Ranks = append(g.Ranks, m.rank(stage, t))
	}
	return g
}

func (m *mini) emit(stage, t int, o ir.Op) {
	p := m.progs[m.rank(stage, t)]
	p.Ops = append(p.Ops, o)
}

func (m *mini) newVal(stage int) gval {
	return gval{stage: stage, syms: make([]string, m.n), shapes: make([][]int, m.n)}
}

// input makes the per-rank tensors (nil = none on that rank) a program input on stage.
func (m *mini) input(stage int, ts []*tensor.Dense) gval {
	v := m.newVal(stage)
	for t, x := range ts {
		if x == nil {
			continue
		}
		s := m.sym("in")
		r := m.rank(stage, t)
		m.progs[r].Inputs = append(m.progs[r].Inputs, s)
		m.init[r][s] = x
		v.syms[t], v.shapes[t] = s, slices.Clone(x.Shape)
	}
	return v
}

// local emits one local op per rank; f gives rank t's op name, attributes and output shape.
func (m *mini) local(x gval, f func(t int, shape []int) (string, ir.Attrs, []int)) gval {
	y := m.newVal(x.stage)
	for t := range m.n {
		if x.syms[t] == "" {
			continue
		}
		op, a, shape := f(t, x.shapes[t])
		y.syms[t], y.shapes[t] = m.sym(op), shape
		m.emit(x.stage, t, ir.Op{Op: op, In: []string{x.syms[t]}, Out: []string{y.syms[t]}, Attr: a})
	}
	return y
}

// collective emits op on every rank of x's stage; shape gives the output's local shape from
// the root's (group rank 0's) input shape.
func (m *mini) collective(x gval, op string, a ir.Attrs, shape func([]int) []int) gval {
	y := m.newVal(x.stage)
	out := shape(x.shapes[0])
	g := m.group(x.stage)
	for t := range m.n {
		y.syms[t], y.shapes[t] = m.sym(op), slices.Clone(out)
		o := ir.Op{Op: op, Out: []string{y.syms[t]}, Attr: a, Group: g}
		if x.syms[t] != "" {
			o.In = []string{x.syms[t]}
		}
		m.emit(x.stage, t, o)
	}
	return y
}

// send moves every rank's tensor of x to the rank with the same TP index on stage `to`, one
// p2p batch per pair (the planner's send_forward/recv_forward and their backward).
func (m *mini) send(x gval, to int) gval {
	y := m.newVal(to)
	for t := range m.n {
		y.syms[t], y.shapes[t] = m.sym("recv"), slices.Clone(x.shapes[t])
		m.emit(x.stage, t, ir.Op{Op: ir.OpP2P, P2P: []ir.Transfer{{Send: true, Peer: m.rank(to, t), Sym: x.syms[t], Shape: x.shapes[t]}}})
		m.emit(to, t, ir.Op{Op: ir.OpP2P, P2P: []ir.Transfer{{Peer: m.rank(x.stage, t), Sym: y.syms[t], Shape: x.shapes[t]}}})
	}
	return y
}

// trace records x's tensors under key.
func (m *mini) trace(x gval, key string) {
	for t := range m.n {
		if x.syms[t] != "" {
			m.emit(x.stage, t, ir.Op{Op: ir.OpTrace, In: []string{x.syms[t]}, Trace: &ir.Tag{Key: key, Name: key}})
		}
	}
}

// run executes the programs and returns, for every traced key, the tensor of each group rank
// of the stage that traced it (nil where a rank traced none).
func (m *mini) run() (map[string][]*tensor.Dense, error) {
	res, err := runtime.Run(m.progs, m.init)
	if err != nil {
		return nil, err
	}
	out := map[string][]*tensor.Dense{}
	for r, traced := range res.Traces {
		for _, tr := range traced {
			if out[tr.Tag.Key] == nil {
				out[tr.Tag.Key] = make([]*tensor.Dense, m.n)
			}
			out[tr.Tag.Key][r%m.n] = tr.T
		}
	}
	return out, nil
}

// ---- the ops the planner pairs ----

func withDim(shape []int, d, size int) []int {
	s := slices.Clone(shape)
	s[d] = size
	return s
}

func (m *mini) allReduce(x gval, how string) gval {
	return m.collective(x, ir.OpAllReduce, ir.Attrs{Strs: map[string]string{"reduce": how}}, slices.Clone[[]int])
}

func (m *mini) allGather(x gval, d int) gval {
	return m.collective(x, ir.OpAllGather, ir.Ints("dim", d), func(s []int) []int { return withDim(s, d, s[d]*m.n) })
}

func (m *mini) reduceScatter(x gval, d int) gval {
	return m.collective(x, ir.OpReduceScatter, ir.Ints("dim", d), func(s []int) []int { return withDim(s, d, s[d]/m.n) })
}

func (m *mini) broadcast(x gval) gval {
	return m.collective(x, ir.OpBroadcast, ir.Ints("root", 0), slices.Clone[[]int])
}

// narrowRankAware keeps group rank t's block t of dim d (a scatter, or a split backward).
func (m *mini) narrowRankAware(x gval, d int) gval {
	return m.local(x, func(t int, s []int) (string, ir.Attrs, []int) {
		l := s[d] / m.n
		return ir.OpNarrow, ir.Ints("dim", d, "start", t*l, "len", l), withDim(s, d, l)
	})
}

// partialSend is Paddle's partial send/recv (Megatron's scatter_gather_tensors_in_pipeline):
// each sender sends flat chunk t of its tensor, the receivers all-gather the chunks.
func (m *mini) partialSend(x gval, to int) gval {
	whole := x.shapes[0]
	chunk := m.local(x, func(t int, s []int) (string, ir.Attrs, []int) {
		return ir.OpFlatChunk, ir.Ints("parts", m.n, "index", t), []int{tensor.Numel(s) / m.n}
	})
	got := m.send(chunk, to)
	return m.collective(got, ir.OpAllGatherFlat, ir.Ints("shape", whole), func([]int) []int { return slices.Clone(whole) })
}
