package ir

import (
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
)

func prog(ops ...Op) *Program {
	return &Program{Format: Format, Version: Version, Rank: 1, World: 4, Inputs: []string{"x"}, Ops: ops}
}

func TestValidateRejects(t *testing.T) {
	sum := Attrs{Strs: map[string]string{"reduce": ReduceSum}}
	cases := []struct {
		reason string
		p      *Program
		want   string
	}{
		{"an unknown op", prog(Op{Op: "matmul", In: []string{"x"}, Out: []string{"y"}}), `unknown op "matmul"`},
		{"too many inputs", prog(Op{Op: OpCopy, In: []string{"x", "x"}, Out: []string{"y"}}), "takes 1 inputs, has 2"},
		{"a missing attribute", prog(Op{Op: OpNarrow, In: []string{"x"}, Out: []string{"y"}}), `missing integer attribute "dim"`},
		{"a symbol read before it is defined", prog(Op{Op: OpCopy, In: []string{"z"}, Out: []string{"y"}}), `reads "z" before it is defined`},
		{"a symbol read after it is freed", prog(Op{Op: OpFree, In: []string{"x"}}, Op{Op: OpCopy, In: []string{"x"}, Out: []string{"y"}}), `reads "x" before it is defined (or after it is freed)`},
		{"a symbol defined twice", prog(Op{Op: OpCopy, In: []string{"x"}, Out: []string{"x"}}), `defines "x", which is empty or already defined`},
		{"a group without this rank", prog(Op{Op: OpAllReduce, In: []string{"x"}, Out: []string{"y"}, Attr: sum, Group: &Group{Name: "tp", Ranks: []int{0, 2}}}), "does not contain this rank 1"},
		{"a group with a repeated rank", prog(Op{Op: OpAllReduce, In: []string{"x"}, Out: []string{"y"}, Attr: sum, Group: &Group{Name: "tp", Ranks: []int{1, 1}}}), "out of world 4 or repeated"},
		{"a collective without a group", prog(Op{Op: OpAllReduce, In: []string{"x"}, Out: []string{"y"}, Attr: sum}), "needs a group"},
		{"a send to itself", prog(Op{Op: OpP2P, P2P: []Transfer{{Send: true, Peer: 1, Sym: "x", Shape: []int{1}}}}), "peer outside world 4 or self"},
		{"a receive into a defined symbol", prog(Op{Op: OpP2P, P2P: []Transfer{{Peer: 0, Sym: "x", Shape: []int{1}}}}), `receives into "x"`},
		{"a trace key used twice", prog(Op{Op: OpTrace, In: []string{"x"}, Trace: &Tag{Key: "k", Name: "a"}}, Op{Op: OpTrace, In: []string{"x"}, Trace: &Tag{Key: "k", Name: "b"}}), `trace key "k" used twice`},
		{"another version", &Program{Format: Format, Version: 2, World: 1}, "version 2"},
	}
	for _, c := range scenario.Cases(t, cases) {
		err := c.p.Validate()
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v, want an error saying %q", c.reason, err, c.want)
		}
	}
}

func TestBroadcastArity(t *testing.T) {
	g := &Group{Name: "dp", Ranks: []int{3, 1}}
	root := Attrs{Ints: map[string][]int{"root": {1}}} // group rank 1 = rank 1: this rank sends
	if err := prog(Op{Op: OpBroadcast, In: []string{"x"}, Out: []string{"y"}, Attr: root, Group: g}).Validate(); err != nil {
		t.Errorf("the root of a broadcast passes its input: %v", err)
	}
	other := Attrs{Ints: map[string][]int{"root": {0}}}
	if err := prog(Op{Op: OpBroadcast, In: []string{"x"}, Out: []string{"y"}, Attr: other, Group: g}).Validate(); err == nil {
		t.Error("a non-root broadcast member with an input was accepted")
	}
}

// TestInsertFrees frees each symbol after its last reader, and unread ones right away.
func TestInsertFrees(t *testing.T) {
	p := prog(
		Op{Op: OpCopy, In: []string{"x"}, Out: []string{"a"}},
		Op{Op: OpCopy, In: []string{"x"}, Out: []string{"unused"}},
		Op{Op: OpP2P, P2P: []Transfer{{Send: true, Peer: 0, Sym: "a", Shape: []int{1}}}},
	)
	InsertFrees(p)
	var got []string
	for _, o := range p.Ops {
		got = append(got, o.String())
	}
	want := []string{"copy [x] -> [a]", "copy [x] -> [unused]", "free [unused x]", "p2p [send a[1] to 0]", "free [a]"}
	if strings.Join(got, "; ") != strings.Join(want, "; ") {
		t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "; "), strings.Join(want, "; "))
	}
	if err := p.Validate(); err != nil {
		t.Error(err)
	}
	n := len(p.Ops)
	InsertFrees(p)
	if len(p.Ops) != n {
		t.Errorf("InsertFrees is not idempotent: %d ops, then %d", n, len(p.Ops))
	}
}
