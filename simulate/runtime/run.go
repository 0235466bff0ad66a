package runtime

import (
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
)

// Error is a failed run: what went wrong (Kind), the ranks involved and a message naming their
// ops and groups.
type Error struct {
	Kind  string // "mismatch", "deadlock", "finished", "kernel", "program"
	Ranks []int
	Msg   string
	Op    int // kernel errors: index of the failing op in the program of Ranks[0]
}

// Kinds of Error.
const (
	ErrMismatch = "mismatch" // a collective's or transfer's participants disagree
	ErrDeadlock = "deadlock" // no rank can make progress
	ErrFinished = "finished" // a rank ended while another waits for it
	ErrKernel   = "kernel"   // a local op failed (bad shapes, bad attributes)
	ErrProgram  = "program"  // a program is malformed or its inputs are missing
)

func (e *Error) Error() string { return "simulate: " + e.Kind + ": " + e.Msg }

// Traced is one traced tensor of a rank, in program order.
type Traced struct {
	Tag ir.Tag
	T   *tensor.Dense
}

// Stats counts what a run did.
type Stats struct {
	LocalOps    int64
	Collectives int64 // completed collectives (counted once, not per member)
	Transfers   int64 // completed sends
	CommBytes   int64 // float64 payload moved: 8 × (elements sent + elements gathered/reduced per member)
}

// Result is every rank's traced tensors.
type Result struct {
	Traces [][]Traced // [rank]
	Stats  Stats
}

// Run executes one program per rank (progs[r].Rank == r), each starting from its init symbols,
// in float64.
func Run(progs []*ir.Program, init []map[string]*tensor.Dense) (*Result, error) {
	return RunIn(tensor.F64, progs, init)
}

// RunIn is Run storing tensors in dtype store: fp32, bf16 and fp16 execute in low precision the
// way the CUDA executor does (precision.go); float64 is Run.
func RunIn(store tensor.DType, progs []*ir.Program, init []map[string]*tensor.Dense) (*Result, error) {
	if err := checkPrograms(progs, init, true); err != nil {
		return nil, err
	}
	return run(store, progs, init)
}

// RunUnchecked is RunIn without validating the programs (ir.Program.Validate, a seventh of a
// tiny plan's run): for programs a compiler has just built from a valid plan, where the caller
// needs only the result (the fuzzer). A malformed program then fails as a kernel error or a
// missing symbol instead of a program error naming the rule it breaks.
func RunUnchecked(store tensor.DType, progs []*ir.Program, init []map[string]*tensor.Dense) (*Result, error) {
	if err := checkPrograms(progs, init, false); err != nil {
		return nil, err
	}
	return run(store, progs, init)
}

func run(store tensor.DType, progs []*ir.Program, init []map[string]*tensor.Dense) (*Result, error) {
	c := newCoordinator(progs)
	if lowPrecision(store) {
		c.store = store
	}
	res := &Result{Traces: make([][]Traced, len(progs))}
	var wg sync.WaitGroup
	for r := range progs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res.Traces[r] = c.runRank(r, init[r])
		}()
	}
	wg.Wait()
	if c.err != nil {
		return nil, c.err
	}
	res.Stats = c.stats
	res.Stats.LocalOps = c.localOps.Load()
	return res, nil
}

// checkPrograms checks what the runtime relies on (one program and one init table per rank,
// in rank order, every input present) and, when validate is set, each program's own rules.
func checkPrograms(progs []*ir.Program, init []map[string]*tensor.Dense, validate bool) error {
	if len(progs) == 0 || len(init) != len(progs) {
		return &Error{Kind: ErrProgram, Msg: fmt.Sprintf("%d programs and %d init tables", len(progs), len(init))}
	}
	for r, p := range progs {
		if p.Rank != r || p.World != len(progs) {
			return &Error{Kind: ErrProgram, Ranks: []int{r}, Msg: fmt.Sprintf("program %d says rank %d of world %d; %d programs given", r, p.Rank, p.World, len(progs))}
		}
		if validate {
			if err := p.Validate(); err != nil {
				return &Error{Kind: ErrProgram, Ranks: []int{r}, Msg: err.Error()}
			}
		}
		for _, s := range p.Inputs {
			if init[r][s] == nil {
				return &Error{Kind: ErrProgram, Ranks: []int{r}, Msg: fmt.Sprintf("rank %d: input %q missing from its init table", r, s)}
			}
		}
	}
	return nil
}

// pending is a rank blocked in a collective or p2p batch.
type pending struct {
	op    *ir.Op
	index int
	in    *tensor.Dense   // collective input (nil for a non-root broadcast)
	dt    tensor.DType    // low precision: the collective's dtype (its input's; the root's for a broadcast)
	sent  []*tensor.Dense // p2p: the tensor of each send (nil for receives)
	dts   []tensor.DType  // low precision, p2p: per transfer, the dtype it travels in
	done  []bool          // p2p: per transfer
	out   []*tensor.Dense // collective: [result]; p2p: per transfer, the received tensor
	ok    bool            // completed
}

type rankState struct {
	wake     chan struct{}
	pend     *pending
	finished bool
	// watchers are the ops other ranks blocked in waiting on this rank (some may have
	// completed since: checkFinished filters them), so a finishing rank checks only those,
	// not every rank; compactAt is the length at which completed ones are dropped.
	watchers  []watcher
	compactAt int
}

// watcher is rank r blocked in op pd.
type watcher struct {
	r  int
	pd *pending
}

// minCompact is the shortest watcher list that is compacted: below it, stale entries cost
// less than filtering them.
const minCompact = 16

type coordinator struct {
	progs    []*ir.Program
	mu       sync.Mutex
	ranks    []*rankState
	running  int // ranks neither blocked nor finished
	finished int
	err      error
	failed   atomic.Bool
	stats    Stats
	localOps atomic.Int64
	store    tensor.DType // low-precision runs: the stored dtype; 0 for float64
}

func newCoordinator(progs []*ir.Program) *coordinator {
	c := &coordinator{progs: progs, ranks: make([]*rankState, len(progs)), running: len(progs)}
	for r := range c.ranks {
		c.ranks[r] = &rankState{wake: make(chan struct{}, 1), compactAt: minCompact}
	}
	return c
}

// runRank executes rank r's program and returns what it traced.
func (c *coordinator) runRank(r int, init map[string]*tensor.Dense) (traced []Traced) {
	p := c.progs[r]
	syms := make(map[string]*tensor.Dense, len(p.Inputs))
	var prec *precision
	if c.store != 0 {
		prec = &precision{store: c.store, of: make(map[string]tensor.DType, len(p.Inputs))}
	}
	for _, s := range p.Inputs {
		syms[s] = init[s]
		if prec != nil {
			syms[s] = prec.load(s, init[s])
		}
	}
	i := 0
	defer func() {
		if v := recover(); v != nil {
			msg := fmt.Sprintf("rank %d op %d %s: %v", r, i, p.Ops[i].String(), v)
			if _, isShape := v.(*tensor.ShapeError); !isShape {
				msg += "\n" + string(debug.Stack()) // not a caller's shape error: a bug in a kernel
			}
			c.fail(&Error{Kind: ErrKernel, Ranks: []int{r}, Msg: msg, Op: i})
			traced = nil
		}
	}()
	for i = range p.Ops {
		if c.failed.Load() {
			return nil
		}
		op := &p.Ops[i]
		if err := c.step(r, i, op, syms, prec, &traced); err != nil {
			c.fail(err)
			return nil
		}
	}
	c.finish(r)
	return traced
}

func (c *coordinator) step(r, i int, op *ir.Op, syms map[string]*tensor.Dense, prec *precision, traced *[]Traced) error {
	in := make([]*tensor.Dense, len(op.In))
	for k, s := range op.In {
		in[k] = syms[s]
	}
	switch ir.Specs[op.Op].Class {
	case ir.Local:
		if prec != nil {
			in = prec.operands(op, in)
		}
		kernel := Kernels[op.Op]
		if k, ok := fp32Kernels[op.Op]; ok && prec != nil && prec.store == tensor.F32 {
			kernel = k
		}
		if prec != nil && op.Op == ir.OpLinearGradWeight && op.Attr.Strs[AccumulateAttr] == AccumulateStored {
			kernel = func(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
				if _, err := kLinearGradWeight(in, a); err != nil { // the shape checks
					return nil, err
				}
				return one(linearGradWeightStored(in[1], in[0], prec.store))
			}
		}
		out, err := kernel(in, op.Attr)
		if err != nil {
			return &Error{Kind: ErrKernel, Ranks: []int{r}, Msg: fmt.Sprintf("rank %d op %d %s: %v", r, i, op.String(), err), Op: i}
		}
		if prec != nil {
			prec.outputs(op, out)
		}
		c.localOps.Add(1)
		bind(syms, op.Out, out)
	case ir.Meta:
		if op.Op == ir.OpTrace {
			*traced = append(*traced, Traced{Tag: *op.Trace, T: in[0]})
		} else {
			for _, s := range op.In {
				delete(syms, s)
			}
		}
	case ir.Collective:
		pd := &pending{op: op, index: i}
		if len(in) > 0 {
			pd.in = in[0]
			if prec != nil {
				pd.dt = prec.of[op.In[0]]
			}
		}
		if err := c.block(r, pd); err != nil {
			return err
		}
		bind(syms, op.Out, pd.out)
		if prec != nil {
			prec.of[op.Out[0]] = pd.dt
		}
	case ir.PointToPoint:
		pd := &pending{op: op, index: i, sent: make([]*tensor.Dense, len(op.P2P)), done: make([]bool, len(op.P2P)), out: make([]*tensor.Dense, len(op.P2P))}
		if prec != nil {
			pd.dts = make([]tensor.DType, len(op.P2P))
		}
		for k, t := range op.P2P {
			if t.Send {
				pd.sent[k] = syms[t.Sym]
				if prec != nil {
					pd.sent[k], pd.dts[k] = prec.send(t.Sym, pd.sent[k])
				}
			}
		}
		if err := c.block(r, pd); err != nil {
			return err
		}
		for k, t := range op.P2P {
			if !t.Send {
				syms[t.Sym] = pd.out[k]
				if prec != nil {
					prec.of[t.Sym] = pd.dts[k]
				}
			}
		}
	}
	return nil
}

func bind(syms map[string]*tensor.Dense, names []string, ts []*tensor.Dense) {
	for k, s := range names {
		syms[s] = ts[k]
	}
}

// fail records the first error and wakes every blocked rank.
func (c *coordinator) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failLocked(err)
}

func (c *coordinator) failLocked(err error) {
	if c.err != nil {
		return
	}
	c.err = err
	c.failed.Store(true)
	for _, s := range c.ranks {
		if s.pend != nil && !s.pend.ok {
			select {
			case s.wake <- struct{}{}:
			default:
			}
		}
	}
}

// block parks rank r in pd until pd completes or the run fails.
func (c *coordinator) block(r int, pd *pending) error {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return c.err
	}
	c.ranks[r].pend = pd
	c.running--
	if err := c.progress(r); err != nil {
		c.failLocked(err)
	} else if err := c.checkBlocked(r); err != nil {
		c.failLocked(err)
	}
	c.mu.Unlock()
	<-c.ranks[r].wake
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ranks[r].pend = nil
	if !pd.ok {
		return c.err
	}
	return nil
}

// complete marks rank r's pending op done and lets it run.
func (c *coordinator) complete(r int) {
	s := c.ranks[r]
	s.pend.ok = true
	c.running++
	select { // a rank holds at most one wake-up: it is blocked in exactly one op
	case s.wake <- struct{}{}:
	default:
	}
}

func (c *coordinator) finish(r int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.ranks[r].finished = true
	c.running--
	c.finished++
	if err := c.checkFinished(r); err != nil {
		c.failLocked(err)
	}
}

// progress completes whatever rank r's newly posted op allows.
func (c *coordinator) progress(r int) error {
	pd := c.ranks[r].pend
	if pd.op.Op == ir.OpP2P {
		return c.progressP2P(r)
	}
	g := pd.op.Group
	members := make([]*pending, len(g.Ranks))
	for k, m := range g.Ranks {
		q := c.ranks[m].pend
		if q == nil || q.ok || !sameGroup(q.op.Group, g) {
			return nil // not every member is here yet
		}
		members[k] = q
	}
	outs, err := c.collective(g, members)
	if err != nil {
		return err
	}
	for k, m := range g.Ranks {
		members[k].out = []*tensor.Dense{outs[k]}
		c.complete(m)
	}
	return nil
}

// progressP2P matches rank r's open transfers with its peers' open transfers, pairwise in
// issue order.
func (c *coordinator) progressP2P(r int) error {
	pd := c.ranks[r].pend
	for k, t := range pd.op.P2P {
		if pd.done[k] {
			continue
		}
		q := c.ranks[t.Peer].pend
		if q == nil || q.ok || q.op.Op != ir.OpP2P {
			continue
		}
		j := firstOpen(q, r, !t.Send)
		if j < 0 {
			continue
		}
		send, recv, sk, rk, sr, rr := pd, q, k, j, r, t.Peer
		if !t.Send {
			send, recv, sk, rk, sr, rr = q, pd, j, k, t.Peer, r
		}
		if err := c.transfer(send, sk, sr, recv, rk, rr); err != nil {
			return err
		}
		if allDone(q) {
			c.complete(t.Peer)
		}
	}
	if allDone(pd) {
		c.complete(r)
	}
	return nil
}

// firstOpen is the index of q's first unfinished transfer with peer r in the given direction.
func firstOpen(q *pending, r int, send bool) int {
	for j, u := range q.op.P2P {
		if !q.done[j] && u.Peer == r && u.Send == send {
			return j
		}
	}
	return -1
}

func allDone(pd *pending) bool {
	for _, d := range pd.done {
		if !d {
			return false
		}
	}
	return true
}

func (c *coordinator) transfer(send *pending, sk, sr int, recv *pending, rk, rr int) error {
	st, rt := send.op.P2P[sk], recv.op.P2P[rk]
	x := send.sent[sk]
	if !tensor.SameShape(st.Shape, rt.Shape) || !tensor.SameShape(x.Shape, st.Shape) {
		return &Error{Kind: ErrMismatch, Ranks: []int{sr, rr}, Msg: fmt.Sprintf(
			"p2p shape mismatch: rank %d op %d %s holds %v; rank %d op %d %s expects %v",
			sr, send.index, st, x.Shape, rr, recv.index, rt, rt.Shape)}
	}
	recv.out[rk] = x.Clone()
	if send.dts != nil && recv.dts != nil {
		recv.dts[rk] = send.dts[sk]
	}
	send.done[sk], recv.done[rk] = true, true
	c.stats.Transfers++
	c.stats.CommBytes += 8 * int64(x.Numel())
	return nil
}

// sameGroup reports whether two ops name the same communicator (Group.Key equality, without
// building the keys).
func sameGroup(a, b *ir.Group) bool {
	return a == b || a != nil && b != nil && a.Name == b.Name && slices.Equal(a.Ranks, b.Ranks)
}

// The run fails when no rank can move: a blocked op that waits on a finished rank, or every
// unfinished rank blocked. Both are checked incrementally, at the one event that can make them
// true, so a blocking call costs the size of its own group, not the world's: after every check
// no blocked rank waits on a finished one, hence a new violation involves the rank that just
// blocked (checkBlocked) or the rank that just finished (checkFinished), and the error is the
// one a scan of every rank in rank order would report.

// checkBlocked runs when rank r has posted an op that progress could not complete.
func (c *coordinator) checkBlocked(r int) error {
	pd := c.ranks[r].pend
	if pd.ok {
		return c.checkDeadlock()
	}
	var err error
	pd.eachOpenPeer(func(q int) {
		if err == nil && c.ranks[q].finished {
			err = c.finishedError(q, r)
		}
	})
	if err != nil {
		return err
	}
	pd.eachOpenPeer(func(q int) { c.watch(q, watcher{r, pd}) })
	return c.checkDeadlock()
}

// checkFinished runs when rank q has finished its program: the lowest blocked rank still
// waiting on q fails the run.
func (c *coordinator) checkFinished(q int) error {
	s := c.ranks[q]
	first := -1
	for _, w := range s.watchers {
		if (first < 0 || w.r < first) && c.blockedIn(w) && w.pd.needs(q) {
			first = w.r
		}
	}
	s.watchers = nil
	if first >= 0 {
		return c.finishedError(q, first)
	}
	return c.checkDeadlock()
}

// watch records that w waits on rank q, first dropping the records of completed ops once the
// list has doubled since its last compaction (O(1) per record: the op's peers are not
// re-read; a rank's records of one op are at most its transfers with q).
func (c *coordinator) watch(q int, w watcher) {
	s := c.ranks[q]
	if len(s.watchers) >= s.compactAt {
		s.watchers = slices.DeleteFunc(s.watchers, func(w watcher) bool { return !c.blockedIn(w) })
		s.compactAt = max(minCompact, 2*len(s.watchers))
	}
	s.watchers = append(s.watchers, w)
}

// blockedIn reports whether w's rank is still blocked in w's op.
func (c *coordinator) blockedIn(w watcher) bool { return c.ranks[w.r].pend == w.pd && !w.pd.ok }

// needs reports whether pd still waits on rank q.
func (pd *pending) needs(q int) bool {
	found := false
	pd.eachOpenPeer(func(p int) { found = found || p == q })
	return found
}

// eachOpenPeer calls f for every rank pd still waits on: its group's members, or the peers of
// its unfinished transfers (in op order, repeats included).
func (pd *pending) eachOpenPeer(f func(q int)) {
	if pd.op.Group != nil {
		for _, q := range pd.op.Group.Ranks {
			f(q)
		}
	}
	for k, t := range pd.op.P2P {
		if !pd.done[k] {
			f(t.Peer)
		}
	}
}

func (c *coordinator) finishedError(q, r int) error {
	pd := c.ranks[r].pend
	return &Error{Kind: ErrFinished, Ranks: []int{q, r}, Msg: fmt.Sprintf(
		"rank %d finished its program while rank %d waits for it at op %d %s", q, r, pd.index, pd.op.String())}
}

// checkDeadlock fails the run when every unfinished rank is blocked.
func (c *coordinator) checkDeadlock() error {
	if c.running > 0 || c.finished == len(c.ranks) {
		return nil
	}
	var blocked []int
	for r, s := range c.ranks {
		if s.pend != nil && !s.pend.ok {
			blocked = append(blocked, r)
		}
	}
	var b strings.Builder
	b.WriteString("no rank can make progress:")
	for _, r := range blocked {
		pd := c.ranks[r].pend
		fmt.Fprintf(&b, "\n  rank %d waits at op %d %s", r, pd.index, pd.op.String())
	}
	if s := sendSendPairs(c, blocked); s != "" {
		b.WriteString("\n  " + s)
	}
	return &Error{Kind: ErrDeadlock, Ranks: blocked, Msg: b.String()}
}

// sendSendPairs names pairs of blocked ranks that each send to the other and neither receives
// from the other: the classic mismatched pipeline hand-off.
func sendSendPairs(c *coordinator, blocked []int) string {
	opens := func(r, peer int, send bool) bool {
		pd := c.ranks[r].pend
		return pd.op.Op == ir.OpP2P && firstOpen(pd, peer, send) >= 0
	}
	var pairs []string
	for _, a := range blocked {
		for _, b := range blocked {
			if a < b && opens(a, b, true) && opens(b, a, true) && !opens(a, b, false) && !opens(b, a, false) {
				pairs = append(pairs, fmt.Sprintf("ranks %d and %d both send to each other and neither receives", a, b))
			}
		}
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "; ")
}
