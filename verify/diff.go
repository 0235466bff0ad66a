package verify

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spcheck/spcheck/trace"
)

// DiffEntry is one logical tensor of an A/B diff.
// MD5A and MD5B are "fp:" and the equality hash when a side was stored as fingerprints.
type DiffEntry struct {
	Name  string
	Kind  trace.Kind
	Order int
	Shape []int
	MD5A  string // "" when A lacks the tensor
	MD5B  string // "" when B lacks the tensor
}

// Equal reports whether both traces hold the tensor with the same canonical bytes.
func (e *DiffEntry) Equal() bool { return e.MD5A != "" && e.MD5A == e.MD5B }

// DiffReport is a bitwise A/B comparison of two traces of the same model, e.g. two branches of a
// framework that should compute the same thing.
type DiffReport struct {
	A, B    TraceInfo
	Kinds   []trace.Kind
	Entries []DiffEntry // by execution order, then name
	Command string
}

// Same reports whether every entry is equal.
func (d *DiffReport) Same() bool {
	for i := range d.Entries {
		if !d.Entries[i].Equal() {
			return false
		}
	}
	return true
}

// DefaultDiffKinds are what an A/B diff compares unless told otherwise: the symptom of seed 001
// is "loss identical, all 23 gradient MD5s differ".
var DefaultDiffKinds = []trace.Kind{trace.Loss, trace.ParamGrad}

// Diff rebuilds the logical tensors of the given kinds (DefaultDiffKinds if none) in both traces
// and compares their MD5s. Layouts may differ: hashes are of the reassembled tensors.
func Diff(a, b *trace.Trace, opt Options, kinds ...trace.Kind) (*DiffReport, error) {
	if len(kinds) == 0 {
		kinds = DefaultDiffKinds
	}
	al, err := layoutOf(a, opt.Rename)
	if err != nil {
		return nil, err
	}
	bl, err := layoutOf(b, opt.Rename)
	if err != nil {
		return nil, err
	}
	keep := func(l *layout) *layout {
		if l != nil && slices.Contains(kinds, l.kind) {
			return l
		}
		return nil
	}
	var pairs []pair
	for _, p := range pairUp(al, bl) {
		if p.ref, p.cand = keep(p.ref), keep(p.cand); p.ref != nil || p.cand != nil {
			pairs = append(pairs, p)
		}
	}
	c := &comparer{opt: opt, rl: al, cl: bl}
	d := &DiffReport{A: traceInfo(al), B: traceInfo(bl), Kinds: kinds, Entries: make([]DiffEntry, len(pairs)), Command: opt.Command}
	err = c.forEach(pairs, func(i int, w *worker) error {
		p := pairs[i]
		e := DiffEntry{Name: p.name, Order: p.order}
		if p.hasFingerprint() {
			var err error
			e.Kind, e.Shape, e.MD5A, e.MD5B, err = c.equalityHashes(p, w)
			d.Entries[i] = e
			return err
		}
		var raws [2][]byte
		for side, l := range []*layout{p.ref, p.cand} {
			if l == nil {
				continue
			}
			e.Kind, e.Shape = l.kind, l.shape
			buf := &w.refBuf
			if side == 1 {
				buf = &w.candBuf
			}
			var err error
			if *buf, _, err = w.a.assemble(l, *buf, DefaultRTol(l.dtype)); err != nil {
				return err
			}
			raws[side] = *buf
		}
		e.MD5A, e.MD5B = w.hashBoth(raws[0], raws[1], p.ref != nil, p.cand != nil)
		d.Entries[i] = e
		return nil
	})
	if err != nil {
		return nil, err
	}
	return d, nil
}

// Summary states the outcome in one line, e.g. "loss identical, all 23 gradient MD5s differ".
func (d *DiffReport) Summary() string {
	type tally struct{ n, diff, only int }
	byKind := map[trace.Kind]*tally{}
	for i := range d.Entries {
		e := &d.Entries[i]
		t := byKind[e.Kind]
		if t == nil {
			t = &tally{}
			byKind[e.Kind] = t
		}
		t.n++
		switch {
		case e.MD5A == "" || e.MD5B == "":
			t.only++
		case !e.Equal():
			t.diff++
		}
	}
	var parts []string
	for _, k := range d.Kinds {
		t := byKind[k]
		if t == nil {
			parts = append(parts, fmt.Sprintf("no %s tensors", kindNoun(k, 2)))
			continue
		}
		parts = append(parts, tallyPhrase(k, t.n, t.diff))
		if t.only > 0 {
			parts = append(parts, fmt.Sprintf("%d %s in only one trace", t.only, kindNoun(k, t.only)))
		}
	}
	return strings.Join(parts, ", ")
}

func tallyPhrase(k trace.Kind, n, diff int) string {
	if k == trace.Loss && n == 1 {
		if diff == 0 {
			return "loss identical"
		}
		return "loss differs"
	}
	noun := kindNoun(k, n)
	if n == 1 {
		if diff == 0 {
			return "the " + noun + " is equal"
		}
		return "the " + noun + " differs"
	}
	switch {
	case diff == 0:
		return fmt.Sprintf("all %d %s equal", n, noun)
	case diff == n:
		return fmt.Sprintf("all %d %s differ", n, noun)
	}
	return fmt.Sprintf("%d of %d %s differ", diff, n, noun)
}

func kindNoun(k trace.Kind, n int) string {
	s := map[trace.Kind]string{trace.Loss: "loss", trace.ParamGrad: "gradient MD5", trace.Param: "parameter MD5",
		trace.Activation: "activation MD5", trace.ActivationGrad: "activation-gradient MD5", trace.Input: "input MD5",
		trace.Output: "output MD5"}[k]
	if s == "" {
		s = string(k)
	}
	if n == 1 {
		return s
	}
	if s == "loss" {
		return "losses"
	}
	return s + "s"
}
