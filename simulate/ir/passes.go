package ir

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// InsertFrees appends, after the last op that reads each symbol, a free of it, so an executor's
// memory holds only live tensors. Symbols never read are freed right after they are defined;
// symbols sent in a p2p batch count as read by it. It is idempotent on a program whose frees
// are already in place.
func InsertFrees(p *Program) {
	last := make(map[string]int, len(p.Inputs)+len(p.Ops))
	note := func(s string, i int) { last[s] = i }
	for _, s := range p.Inputs {
		note(s, -1)
	}
	for i, o := range p.Ops {
		if o.Op == OpFree {
			for _, s := range o.In {
				delete(last, s)
			}
			continue
		}
		for _, s := range o.In {
			note(s, i)
		}
		for _, s := range o.Out {
			note(s, i)
		}
		for _, t := range o.P2P {
			note(t.Sym, i)
		}
	}
	// The frees, ordered by the op they follow, then by symbol.
	type free struct {
		after int
		sym   string
	}
	frees := make([]free, 0, len(last))
	for s, i := range last {
		frees = append(frees, free{i, s})
	}
	slices.SortFunc(frees, func(a, b free) int {
		if c := cmp.Compare(a.after, b.after); c != 0 {
			return c
		}
		return strings.Compare(a.sym, b.sym)
	})
	syms := make([]string, len(frees))
	for k, f := range frees {
		syms[k] = f.sym
	}
	out := make([]Op, 0, len(p.Ops)+len(frees))
	next := 0
	emit := func(i int) {
		from := next
		for next < len(frees) && frees[next].after == i {
			next++
		}
		if next > from {
			out = append(out, Op{Op: OpFree, In: syms[from:next:next]})
		}
	}
	emit(-1)
	for i, o := range p.Ops {
		out = append(out, o)
		emit(i)
	}
	p.Ops = out
}

// Rewrite replaces every op for which f returns ok with the ops f returns (none deletes it).
// Bug variants are rewrites: f selects ops by Op, Role or operands.
func Rewrite(p *Program, f func(o Op) (repl []Op, ok bool)) {
	out := make([]Op, 0, len(p.Ops))
	for _, o := range p.Ops {
		if repl, ok := f(o); ok {
			out = append(out, repl...)
			continue
		}
		out = append(out, o)
	}
	p.Ops = out
}

// RecomputeSuffix ends the name of a symbol's recomputed twin (Recompute).
const RecomputeSuffix = "~recompute"

// Recompute is activation recompute (checkpointing) of a forward region: the local ops and
// collectives that define any of defs, of which outputs are the ones the rest of the forward
// reads (kept, as a checkpoint keeps its outputs). Copies of the region's ops, every symbol of
// defs renamed s → s+RecomputeSuffix and patch (if not nil) applied to each, are inserted just
// before the first op after the region (not a trace or free) that reads one of its internal
// symbols — the region's backward — and from there on every op reads the internal symbols'
// twins. Traces of the forward keep the originals. Frees are placed anew (StripFrees,
// InsertFrees), so the internal originals die after the forward. It returns the number of ops
// recomputed (0 when nothing reads the region's internals after it).
func Recompute(p *Program, defs, outputs []string, patch func(o *Op)) (int, error) {
	in, internal := map[string]bool{}, map[string]bool{}
	for _, s := range defs {
		in[s], internal[s] = true, true
	}
	for _, s := range outputs {
		delete(internal, s)
	}
	twin := func(s string, m map[string]bool) string {
		if m[s] {
			return s + RecomputeSuffix
		}
		return s
	}
	StripFrees(p)
	var region []int
	for i, o := range p.Ops {
		if Specs[o.Op].Class == Meta {
			continue
		}
		for _, s := range o.Out {
			if in[s] {
				region = append(region, i)
				break
			}
		}
	}
	if len(region) == 0 {
		InsertFrees(p)
		return 0, nil
	}
	first := -1
	for i := region[len(region)-1] + 1; i < len(p.Ops) && first < 0; i++ {
		o := p.Ops[i]
		if o.Op == OpTrace || o.Op == OpFree {
			continue
		}
		for _, s := range readsOf(o) {
			if internal[s] {
				first = i
				break
			}
		}
	}
	if first < 0 {
		InsertFrees(p)
		return 0, nil
	}
	defined := map[string]bool{}
	for _, o := range p.Ops {
		for _, s := range o.Out {
			defined[s] = true
		}
	}
	copies := make([]Op, 0, len(region))
	for _, i := range region {
		c := cloneOp(p.Ops[i])
		for k, s := range c.In {
			c.In[k] = twin(s, in)
		}
		for k, s := range c.Out {
			if defined[s+RecomputeSuffix] {
				return 0, fmt.Errorf("ir: rank %d: %s is already recomputed", p.Rank, s)
			}
			c.Out[k] = twin(s, in)
		}
		if patch != nil {
			patch(&c)
		}
		copies = append(copies, c)
	}
	for i := first; i < len(p.Ops); i++ {
		o := &p.Ops[i]
		for k, s := range o.In {
			o.In[k] = twin(s, internal)
		}
		for k := range o.P2P {
			if o.P2P[k].Send {
				o.P2P[k].Sym = twin(o.P2P[k].Sym, internal)
			}
		}
	}
	p.Ops = slices.Concat(p.Ops[:first], copies, p.Ops[first:])
	InsertFrees(p)
	return len(copies), nil
}

// StripFrees removes every free (InsertFrees puts them back where they belong).
func StripFrees(p *Program) {
	p.Ops = slices.DeleteFunc(p.Ops, func(o Op) bool { return o.Op == OpFree })
}

// readsOf lists the symbols o reads: its inputs and the symbols it sends.
func readsOf(o Op) []string {
	r := slices.Clone(o.In)
	for _, t := range o.P2P {
		if t.Send {
			r = append(r, t.Sym)
		}
	}
	return r
}

// cloneOp copies o deeply enough that editing the copy's operands and attributes leaves o alone.
func cloneOp(o Op) Op {
	c := o
	c.In, c.Out = slices.Clone(o.In), slices.Clone(o.Out)
	c.Attr = Attrs{Ints: map[string][]int{}, Floats: maps.Clone(o.Attr.Floats), Strs: maps.Clone(o.Attr.Strs)}
	for k, v := range o.Attr.Ints {
		c.Attr.Ints[k] = slices.Clone(v)
	}
	if o.Group != nil {
		g := *o.Group
		g.Ranks = slices.Clone(o.Group.Ranks)
		c.Group = &g
	}
	c.P2P = slices.Clone(o.P2P)
	if o.Trace != nil {
		t := *o.Trace
		t.Coord = maps.Clone(o.Trace.Coord)
		c.Trace = &t
	}
	return c
}
