package runtime

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
)

// world builds n programs whose rank r starts with symbol "x" = vals(r) and runs ops(r).
func world(n int, vals func(r int) *tensor.Dense, ops func(r int) []ir.Op) ([]*ir.Program, []map[string]*tensor.Dense) {
	progs := make([]*ir.Program, n)
	init := make([]map[string]*tensor.Dense, n)
	for r := range n {
		progs[r] = &ir.Program{Format: ir.Format, Version: ir.Version, Rank: r, World: n, Inputs: []string{"x"}, Ops: ops(r)}
		init[r] = map[string]*tensor.Dense{"x": vals(r)}
	}
	return progs, init
}

func traceOp(sym string) ir.Op {
	return ir.Op{Op: ir.OpTrace, In: []string{sym}, Trace: &ir.Tag{Key: sym, Name: sym}}
}

func group(name string, ranks ...int) *ir.Group { return &ir.Group{Name: name, Ranks: ranks} }

func ints1(k string, v ...int) ir.Attrs { return ir.Attrs{Ints: map[string][]int{k: v}} }

func traced(t *testing.T, res *Result, r int) []float64 {
	t.Helper()
	if len(res.Traces[r]) != 1 {
		t.Fatalf("rank %d traced %d tensors", r, len(res.Traces[r]))
	}
	return res.Traces[r][0].T.Data
}

// TestCollectiveSemantics checks each collective against NCCL's definition on 3 ranks whose
// group order (2,0,1) differs from rank order, so a result built in rank order would differ.
func TestCollectiveSemantics(t *testing.T) {
	g := group("tp", 2, 0, 1)
	vals := func(r int) *tensor.Dense { // rank r holds [10r+0, 10r+1, 10r+2, 10r+3, 10r+4, 10r+5] as [2,3]
		return tensor.FromData([]int{2, 3}, []float64{float64(10 * r), float64(10*r + 1), float64(10*r + 2), float64(10*r + 3), float64(10*r + 4), float64(10*r + 5)})
	}
	cases := []struct {
		reason string
		op     ir.Op
		want   map[int][]float64
	}{
		{"all_reduce sums element-wise", ir.Op{Op: ir.OpAllReduce, Attr: ir.Attrs{Strs: map[string]string{"reduce": "sum"}}},
			map[int][]float64{0: {30, 33, 36, 39, 42, 45}}},
		{"all_reduce max takes the element-wise max", ir.Op{Op: ir.OpAllReduce, Attr: ir.Attrs{Strs: map[string]string{"reduce": "max"}}},
			map[int][]float64{1: {20, 21, 22, 23, 24, 25}}},
		{"all_gather concatenates in group-rank order (2,0,1) on dim 1",
			ir.Op{Op: ir.OpAllGather, Attr: ints1("dim", 1)},
			map[int][]float64{0: {20, 21, 22, 0, 1, 2, 10, 11, 12, 23, 24, 25, 3, 4, 5, 13, 14, 15}}},
		{"all_gather_flat concatenates flattened chunks in group-rank order",
			ir.Op{Op: ir.OpAllGatherFlat, Attr: ints1("shape", 3, 6)},
			map[int][]float64{2: {20, 21, 22, 23, 24, 25, 0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15}}},
		{"reduce_scatter gives chunk k of the sum to group rank k: rank 2 is group rank 0",
			ir.Op{Op: ir.OpReduceScatter, Attr: ints1("dim", 1)},
			map[int][]float64{2: {30, 39}, 0: {33, 42}, 1: {36, 45}}},
		{"broadcast copies the root's (group rank 1 = rank 0) tensor",
			ir.Op{Op: ir.OpBroadcast, Attr: ints1("root", 1)},
			map[int][]float64{1: {0, 1, 2, 3, 4, 5}, 2: {0, 1, 2, 3, 4, 5}}},
	}
	for _, c := range scenario.Cases(t, cases) {
		progs, init := world(3, vals, func(r int) []ir.Op {
			op := c.op
			op.Group, op.In, op.Out = g, []string{"x"}, []string{"y"}
			if op.Op == ir.OpBroadcast && r != 0 {
				op.In = nil
			}
			return []ir.Op{op, traceOp("y")}
		})
		res, err := Run(progs, init)
		if err != nil {
			t.Fatalf("%s: %v", c.reason, err)
		}
		for r, want := range c.want {
			if got := traced(t, res, r); !slices.Equal(got, want) {
				t.Errorf("%s: rank %d got %v, want %v", c.reason, r, got, want)
			}
		}
	}
}

// TestPartialP2P runs Paddle's partial send/recv: each sender sends flat chunk tp of its
// tensor, each receiver all-gathers the chunks over its TP group. With replicated senders the
// receivers get the tensor; with different senders every receiver gets the same frankentensor
// concat_q chunk_q(X_q) (Paddle p2p_communication.py, allgather_partial).
func TestPartialP2P(t *testing.T) {
	for _, c := range scenario.Cases(t, []struct {
		reason     string
		replicated bool
		want       []float64
	}{
		{"replicated senders: receivers get X", true, []float64{1, 2, 3, 4}},
		{"different senders: every receiver gets chunk 0 of X_0 then chunk 1 of X_1", false, []float64{1, 2, 13, 14}},
	}) {
		vals := func(r int) *tensor.Dense {
			if c.replicated || r != 1 {
				return tensor.FromData([]int{2, 2}, []float64{1, 2, 3, 4})
			}
			return tensor.FromData([]int{2, 2}, []float64{11, 12, 13, 14})
		}
		// ranks 0,1: stage 0 (tp 0,1); ranks 2,3: stage 1.
		progs, init := world(4, vals, func(r int) []ir.Op {
			tp := r % 2
			if r < 2 {
				return []ir.Op{
					{Op: ir.OpFlatChunk, In: []string{"x"}, Out: []string{"c"}, Attr: ir.Attrs{Ints: map[string][]int{"parts": {2}, "index": {tp}}}},
					{Op: ir.OpP2P, P2P: []ir.Transfer{{Send: true, Peer: r + 2, Sym: "c", Shape: []int{2}}}},
				}
			}
			return []ir.Op{
				{Op: ir.OpP2P, P2P: []ir.Transfer{{Peer: r - 2, Sym: "c", Shape: []int{2}}}},
				{Op: ir.OpAllGatherFlat, In: []string{"c"}, Out: []string{"y"}, Group: group("tp", 2, 3), Attr: ints1("shape", 2, 2)},
				traceOp("y"),
			}
		})
		res, err := Run(progs, init)
		if err != nil {
			t.Fatalf("%s: %v", c.reason, err)
		}
		for _, r := range []int{2, 3} {
			if got := traced(t, res, r); !slices.Equal(got, c.want) {
				t.Errorf("%s: rank %d got %v, want %v", c.reason, r, got, c.want)
			}
		}
	}
}

// TestBatchedP2P: two stages exchanging in both directions inside one batch each (1F1B's
// send_forward_recv_backward) complete; the same exchange as separate blocking sends deadlocks.
func TestBatchedP2P(t *testing.T) {
	vals := func(r int) *tensor.Dense { return tensor.FromData([]int{1}, []float64{float64(r + 1)}) }
	progs, init := world(2, vals, func(r int) []ir.Op {
		return []ir.Op{{Op: ir.OpP2P, P2P: []ir.Transfer{
			{Send: true, Peer: 1 - r, Sym: "x", Shape: []int{1}}, {Peer: 1 - r, Sym: "y", Shape: []int{1}}}}, traceOp("y")}
	})
	res, err := Run(progs, init)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := traced(t, res, 0), traced(t, res, 1); a[0] != 2 || b[0] != 1 {
		t.Errorf("exchange gave %v %v", a, b)
	}
}

// TestFailures: mismatched programs fail with an error naming the ranks, ops and groups, and
// never hang (synctest fails the test if a goroutine stays blocked).
func TestFailures(t *testing.T) {
	one := func(r int) *tensor.Dense { return tensor.FromData([]int{2}, []float64{1, 2}) }
	sum := ir.Attrs{Strs: map[string]string{"reduce": "sum"}}
	cases := []struct {
		reason string
		ops    func(r int) []ir.Op
		kind   string
		want   []string
	}{
		{"a stage that sends where its peer also sends", func(r int) []ir.Op {
			return []ir.Op{{Op: ir.OpP2P, P2P: []ir.Transfer{{Send: true, Peer: 1 - r, Sym: "x", Shape: []int{2}}}}, traceOp("x")}
		}, ErrDeadlock, []string{"rank 0 waits at op 0 p2p [send x[2] to 1]", "rank 1 waits at op 0 p2p [send x[2] to 0]", "ranks 0 and 1 both send to each other and neither receives"}},
		{"an all_reduce met by an all_gather on the same group", func(r int) []ir.Op {
			op := ir.Op{Op: ir.OpAllReduce, In: []string{"x"}, Out: []string{"y"}, Group: group("tp", 0, 1), Attr: sum}
			if r == 1 {
				op = ir.Op{Op: ir.OpAllGather, In: []string{"x"}, Out: []string{"y"}, Group: group("tp", 0, 1), Attr: ints1("dim", 0)}
			}
			return []ir.Op{op}
		}, ErrMismatch, []string{"collective mismatch on group tp[0 1]", "rank 0 op 0 all_reduce(sum)", "rank 1 op 0 all_gather(dim=0)"}},
		{"a rank that finishes while its group waits", func(r int) []ir.Op {
			if r == 1 {
				return nil
			}
			return []ir.Op{{Op: ir.OpAllReduce, In: []string{"x"}, Out: []string{"y"}, Group: group("dp", 0, 1), Attr: sum}}
		}, ErrFinished, []string{"rank 1 finished its program while rank 0 waits for it at op 0 all_reduce(sum) dp[0 1]"}},
		{"a receive whose shape disagrees with the send", func(r int) []ir.Op {
			if r == 0 {
				return []ir.Op{{Op: ir.OpP2P, P2P: []ir.Transfer{{Send: true, Peer: 1, Sym: "x", Shape: []int{2}}}}}
			}
			return []ir.Op{{Op: ir.OpP2P, P2P: []ir.Transfer{{Peer: 0, Sym: "y", Shape: []int{3}}}}}
		}, ErrMismatch, []string{"p2p shape mismatch", "rank 1 op 0 recv y[3] from 0"}},
		{"collectives issued in different orders on two groups", func(r int) []ir.Op {
			a := ir.Op{Op: ir.OpAllReduce, In: []string{"x"}, Out: []string{"a"}, Group: group("tp", 0, 1), Attr: sum}
			b := ir.Op{Op: ir.OpAllReduce, In: []string{"x"}, Out: []string{"b"}, Group: group("dp", 0, 1), Attr: sum}
			if r == 1 {
				a, b = b, a
			}
			return []ir.Op{a, b}
		}, ErrDeadlock, []string{"rank 0 waits at op 0 all_reduce(sum) tp[0 1]", "rank 1 waits at op 0 all_reduce(sum) dp[0 1]"}},
		{"a kernel given bad shapes", func(r int) []ir.Op {
			return []ir.Op{{Op: ir.OpNarrow, In: []string{"x"}, Out: []string{"y"}, Attr: ir.Attrs{Ints: map[string][]int{"dim": {0}, "start": {1}, "len": {5}}}}}
		}, ErrKernel, []string{"op 0 narrow(dim=0)", "out of dim 0"}},
	}
	for _, c := range scenario.Cases(t, cases) {
		synctest.Test(t, func(t *testing.T) {
			progs, init := world(2, one, c.ops)
			_, err := Run(progs, init)
			var e *Error
			if !errors.As(err, &e) || e.Kind != c.kind {
				t.Fatalf("%s: got %v, want a %s error", c.reason, err, c.kind)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%s: error %q does not say %q", c.reason, err, w)
				}
			}
		})
	}
}

// TestEveryLocalOpHasAKernel keeps the IR's op table and the runtime in step.
func TestEveryLocalOpHasAKernel(t *testing.T) {
	for name, s := range ir.Specs {
		if s.Class == ir.Local && Kernels[name] == nil {
			t.Errorf("local op %s has no kernel", name)
		}
	}
	for name := range Kernels {
		if ir.Specs[name].Class != ir.Local {
			t.Errorf("kernel %s is not a local op of the IR", name)
		}
	}
}

// TestFinishedRankAtScale: a rank that finishes while its peers still wait for it is named,
// however many times they have waited on it before (the watcher lists are compacted on the
// way) and whichever of them blocks first or last.
func TestFinishedRankAtScale(t *testing.T) {
	sum := ir.Attrs{Strs: map[string]string{"reduce": "sum"}}
	const n, rounds = 8, 50
	all := group("world", 0, 1, 2, 3, 4, 5, 6, 7)
	one := func(r int) *tensor.Dense { return tensor.FromData([]int{1}, []float64{float64(r)}) }
	for _, quitter := range []int{0, 5, 7} {
		synctest.Test(t, func(t *testing.T) {
			progs, init := world(n, one, func(r int) []ir.Op {
				k := rounds
				if r != quitter {
					k++ // one all-reduce more than the quitter posts
				}
				var ops []ir.Op
				for i := range k {
					in, out := fmt.Sprint("x", i), fmt.Sprint("x", i+1)
					if i == 0 {
						in = "x"
					}
					ops = append(ops, ir.Op{Op: ir.OpAllReduce, In: []string{in}, Out: []string{out}, Group: all, Attr: sum})
				}
				return ops
			})
			_, err := Run(progs, init)
			var e *Error
			if !errors.As(err, &e) || e.Kind != ErrFinished || e.Ranks[0] != quitter {
				t.Fatalf("rank %d quits early: got %v, want rank %d named as finished", quitter, err, quitter)
			}
			if !strings.Contains(e.Msg, fmt.Sprintf("at op %d all_reduce(sum)", rounds)) {
				t.Errorf("the waiting rank is not named at op %d: %v", rounds, err)
			}
		})
	}
}

// TestRingDeadlockAtScale: every rank of a 64-rank ring sends to its right neighbour and
// none receives; the deadlock names every rank.
func TestRingDeadlockAtScale(t *testing.T) {
	const n = 64
	synctest.Test(t, func(t *testing.T) {
		progs, init := world(n, func(int) *tensor.Dense { return tensor.FromData([]int{1}, []float64{1}) }, func(r int) []ir.Op {
			return []ir.Op{{Op: ir.OpP2P, P2P: []ir.Transfer{{Send: true, Peer: (r + 1) % n, Sym: "x", Shape: []int{1}}}}}
		})
		_, err := Run(progs, init)
		var e *Error
		if !errors.As(err, &e) || e.Kind != ErrDeadlock || len(e.Ranks) != n {
			t.Fatalf("got %v, want a deadlock naming all %d ranks", err, n)
		}
	})
}

// TestFinishNamesLowestWaiter drives the coordinator by hand, without goroutines: ranks 1…7
// wait on rank 0 in 50 all-reduces that complete (their watcher records go stale and are
// dropped), then in a 51st that rank 0 never posts; rank 0 finishing must name rank 1,
// the lowest rank waiting for it, as a scan of every rank would.
func TestFinishNamesLowestWaiter(t *testing.T) {
	const n = 8
	all := group("world", 0, 1, 2, 3, 4, 5, 6, 7)
	op := &ir.Op{Op: ir.OpAllReduce, In: []string{"x"}, Out: []string{"y"}, Group: all, Attr: ir.Attrs{Strs: map[string]string{"reduce": "sum"}}}
	progs, _ := world(n, func(int) *tensor.Dense { return nil }, func(int) []ir.Op { return nil })
	c := newCoordinator(progs)
	x := tensor.FromData([]int{1}, []float64{1})
	post := func(r, index int) error {
		c.ranks[r].pend = &pending{op: op, index: index, in: x}
		c.running--
		if err := c.progress(r); err != nil {
			return err
		}
		return c.checkBlocked(r)
	}
	for round := range 50 {
		for r := n - 1; r >= 0; r-- {
			if err := post(r, round); err != nil {
				t.Fatalf("round %d rank %d: %v", round, r, err)
			}
		}
		for _, s := range c.ranks { // every member completed: wake it
			if !s.pend.ok {
				t.Fatalf("round %d did not complete", round)
			}
			<-s.wake
			s.pend = nil
		}
	}
	for r := 1; r < n; r++ { // rank 1 first: its record is the oldest
		if err := post(r, 50); err != nil {
			t.Fatalf("rank %d: %v", r, err)
		}
	}
	if got := len(c.ranks[0].watchers); got > 4*n {
		t.Errorf("rank 0 has %d watcher records for %d waiting ranks: stale records are not dropped", got, n-1)
	}
	c.ranks[0].finished = true
	c.running--
	c.finished++
	err := c.checkFinished(0)
	var e *Error
	if !errors.As(err, &e) || e.Kind != ErrFinished || !slices.Equal(e.Ranks, []int{0, 1}) {
		t.Fatalf("got %v, want rank 0 named as finished while rank 1 waits", err)
	}
}
