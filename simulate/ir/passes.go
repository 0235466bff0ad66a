package ir

import "slices"

// InsertFrees appends, after the last op that reads each symbol, a free of it, so an executor's
// memory holds only live tensors. Symbols never read are freed right after they are defined;
// symbols sent in a p2p batch count as read by it. It is idempotent on a program whose frees
// are already in place.
func InsertFrees(p *Program) {
	last := map[string]int{}
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
	freeAfter := map[int][]string{}
	for s, i := range last {
		freeAfter[i] = append(freeAfter[i], s)
	}
	out := make([]Op, 0, len(p.Ops)+len(freeAfter))
	emit := func(i int) {
		if syms := freeAfter[i]; len(syms) > 0 {
			slices.Sort(syms)
			out = append(out, Op{Op: OpFree, In: syms})
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
