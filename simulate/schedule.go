package simulate

import (
	"fmt"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
)

// mbState is one micro-batch's forward on this rank, kept for its backward.
type mbState struct {
	m    int
	tape []func()
	recv []*val // received from the previous stage (their grads go back)
	send []*val // sent to the next stage (their grads come back)
}

// boundary describes the tensors crossing a stage boundary (the same for every micro-batch,
// forward and backward): shape and TP placement.
func (b *builder) boundary() []*val {
	full := &val{shape: b.bsh(b.l.p.Hidden), pl: rep}
	rows := b.seqShard(&val{shape: []int{b.l.rows, b.l.seqBlock, b.l.p.Hidden}})
	switch b.l.sp {
	case plan.SPMegatron:
		return []*val{rows}
	case plan.SPVLLM:
		return []*val{full, rows} // hidden states, scattered residual
	}
	return []*val{full}
}

// usePartial says whether a tensor crosses the boundary by partial P2P (Paddle's
// enable_partial_send_recv, Megatron's scatter_gather_tensors_in_pipeline): only when the plan
// asks for it, the tensor is replicated over TP — the optimisation's precondition, so under SP
// the planner keeps it off for sequence shards (the frameworks' guard: PaddleFleetX config.py process_global_configs, Megatron-LM's
// `not args.sequence_parallel` in p2p_communication.py) — and
// its size divides by tp (else the full send is the fallback).
func (b *builder) usePartial(v *val) bool {
	return b.l.p.PartialP2P && b.l.tp > 1 && v.pl == rep && tensor.Numel(v.shape)%b.l.tp == 0
}

// p2pBatch collects the transfers of one p2p op and what to emit after it.
type p2pBatch struct {
	b     *builder
	ts    []ir.Transfer
	posts []func()
	roles []string
}

func (b *builder) batch() *p2pBatch { return &p2pBatch{b: b} }

// send adds the sends of vs to peer (a flat chunk per tensor under partial P2P).
func (pb *p2pBatch) send(peer int, vs []*val, role string) {
	b := pb.b
	for _, v := range vs {
		x := v
		if b.usePartial(v) {
			n := tensor.Numel(v.shape) / b.l.tp
			x = b.op(ir.OpFlatChunk, []*val{v}, ir.Ints("parts", b.l.tp, "index", b.c.tp), &val{sym: b.newSym("chunk"), shape: []int{n}})
			b.ops[len(b.ops)-1].Role = RolePartialChunk
		}
		pb.ts = append(pb.ts, ir.Transfer{Send: true, Peer: peer, Sym: x.sym, Shape: x.shape})
	}
	pb.roles = append(pb.roles, role)
}

// recv adds receives from peer of tensors laid out like protos and returns their values.
func (pb *p2pBatch) recv(peer int, protos []*val, role string) []*val {
	b := pb.b
	out := make([]*val, len(protos))
	for i, p := range protos {
		v := &val{sym: b.newSym("recv"), shape: p.shape, pl: p.pl, dim: p.dim, block: p.block, gsize: p.gsize}
		out[i] = v
		if !b.usePartial(p) {
			pb.ts = append(pb.ts, ir.Transfer{Peer: peer, Sym: v.sym, Shape: v.shape})
			continue
		}
		chunk := b.newSym("recv_chunk")
		n := tensor.Numel(p.shape) / b.l.tp
		pb.ts = append(pb.ts, ir.Transfer{Peer: peer, Sym: chunk, Shape: []int{n}})
		pb.posts = append(pb.posts, func() {
			b.emit(ir.Op{Op: ir.OpAllGatherFlat, In: []string{chunk}, Out: []string{v.sym}, Attr: ir.Ints("shape", v.shape),
				Group: b.l.tpGroup(b.c), Role: RolePartialGather})
		})
	}
	pb.roles = append(pb.roles, role)
	return out
}

// flush emits the batch (nothing when empty).
func (pb *p2pBatch) flush() {
	if len(pb.ts) == 0 {
		return
	}
	role := pb.roles[0]
	for _, r := range pb.roles[1:] {
		role += "+" + r
	}
	pb.b.emit(ir.Op{Op: ir.OpP2P, P2P: pb.ts, Role: role})
	for _, f := range pb.posts {
		f()
	}
}

func (b *builder) prevRank() int { return b.l.rank(coord{b.c.dp, b.c.pp - 1, b.c.tp}) }
func (b *builder) nextRank() int { return b.l.rank(coord{b.c.dp, b.c.pp + 1, b.c.tp}) }
func (b *builder) first() bool   { return b.c.pp == 0 }
func (b *builder) last() bool    { return b.c.pp == b.l.pp-1 }

// pipeline is one rank's schedule of micro-batch forwards and backwards with their P2P
// hand-offs (Megatron's p2p_communication names).
type pipeline struct {
	b      *builder
	data   func(m int) *mbData
	states []*mbState
}

func (p *pipeline) fwd(m int, recv []*val) []*val {
	b := p.b
	b.mb, b.tape = m, nil
	send := b.stageForward(p.data(m), recv)
	p.states[m] = &mbState{m: m, tape: b.tape, recv: recv, send: send}
	b.tape = nil
	return send
}

func (p *pipeline) bwd(m int, grads []*val) []*val {
	b, st := p.b, p.states[m]
	b.mb = m
	for i, v := range st.send {
		b.accum(v, grads[i])
	}
	b.backward(st.tape)
	out := make([]*val, len(st.recv))
	for i, v := range st.recv {
		if v.grad == nil {
			panic(fmt.Sprintf("simulate: rank %d micro-batch %d: no gradient for received %v", b.rank, m, v))
		}
		out[i] = v.grad
	}
	p.states[m] = nil
	return out
}

func (p *pipeline) recvForward() []*val {
	if p.b.first() {
		return nil
	}
	pb := p.b.batch()
	x := pb.recv(p.b.prevRank(), p.b.boundary(), RoleRecvForward)
	pb.flush()
	return x
}

func (p *pipeline) sendForward(y []*val) {
	if p.b.last() {
		return
	}
	pb := p.b.batch()
	pb.send(p.b.nextRank(), y, RoleSendForward)
	pb.flush()
}

func (p *pipeline) recvBackward() []*val {
	if p.b.last() {
		return nil
	}
	pb := p.b.batch()
	g := pb.recv(p.b.nextRank(), p.b.boundary(), RoleRecvBackward)
	pb.flush()
	return g
}

func (p *pipeline) sendBackward(dx []*val) {
	if p.b.first() {
		return
	}
	pb := p.b.batch()
	pb.send(p.b.prevRank(), dx, RoleSendBackward)
	pb.flush()
}

// sendForwardRecvBackward is one batch: send y to the next stage and receive the gradient of
// an earlier output from it (1F1B's steady state; separate blocking calls would deadlock).
func (p *pipeline) sendForwardRecvBackward(y []*val) []*val {
	if p.b.last() {
		return nil
	}
	pb := p.b.batch()
	pb.send(p.b.nextRank(), y, RoleSendForward)
	g := pb.recv(p.b.nextRank(), p.b.boundary(), RoleRecvBackward)
	pb.flush()
	return g
}

func (p *pipeline) sendBackwardRecvForward(dx []*val) []*val {
	if p.b.first() {
		return nil
	}
	pb := p.b.batch()
	pb.send(p.b.prevRank(), dx, RoleSendBackward)
	x := pb.recv(p.b.prevRank(), p.b.boundary(), RoleRecvForward)
	pb.flush()
	return x
}

// run emits every micro-batch's forward and backward in the plan's schedule. Either way the
// backwards run in micro-batch order, so gradients accumulate in the same order and the
// schedule cannot change a result.
func (p *pipeline) run() {
	b := p.b
	mbs := b.l.mbs
	p.states = make([]*mbState, mbs)
	if b.l.p.Schedule == plan.GPipe {
		for m := 0; m < mbs; m++ {
			p.sendForward(p.fwd(m, p.recvForward()))
		}
		for m := 0; m < mbs; m++ {
			p.sendBackward(p.bwd(m, p.recvBackward()))
		}
		return
	}
	// 1F1B (Megatron's forward_backward_pipelining_without_interleaving).
	warmup := min(b.l.pp-b.c.pp-1, mbs)
	steady := mbs - warmup
	for m := 0; m < warmup; m++ {
		p.sendForward(p.fwd(m, p.recvForward()))
	}
	var x []*val
	if steady > 0 {
		x = p.recvForward()
	}
	for i := 0; i < steady; i++ {
		g := p.sendForwardRecvBackward(p.fwd(warmup+i, x))
		dx := p.bwd(i, g)
		if i == steady-1 {
			p.sendBackward(dx)
		} else {
			x = p.sendBackwardRecvForward(dx)
		}
	}
	for i := 0; i < warmup; i++ {
		m := steady + i
		p.sendBackward(p.bwd(m, p.recvBackward()))
	}
}

// finishGrads reduces every parameter gradient this rank holds and traces it: replicated
// parameters whose gradient is partial (norms on sequence shards) are SUM all-reduced over TP,
// the embedding over the first and last stage, everything over DP.
func (b *builder) finishGrads(names []string) {
	for _, name := range names {
		w := b.params[name]
		g := b.pgrad[name]
		if g == nil {
			panic(fmt.Sprintf("simulate: rank %d: no gradient for parameter %s", b.rank, name))
		}
		if w.pl == rep && g.pl == part {
			g = b.allReduceRaw(g, ir.ReduceSum, RoleGradTPSum)
		}
		if name == "embedding.weight" {
			if eg := b.l.embeddingGroup(b.c); eg != nil {
				g = b.groupAllReduce(g, eg, RoleGradEmbeddingSum)
			}
		}
		if b.l.dp > 1 {
			g = b.groupAllReduce(g, b.l.dpGroup(b.c), RoleGradDPSum)
		}
		b.traceAs(g, "grad/"+name, "param_grad", joinPlace("pp=stage", b.tpItem(w)), b.globalShape(w, false), false)
	}
}

func (b *builder) groupAllReduce(x *val, g *ir.Group, role string) *val {
	out := &val{sym: b.newSym("allreduce"), shape: x.shape, pl: x.pl, dim: x.dim, block: x.block, gsize: x.gsize}
	b.emit(ir.Op{Op: ir.OpAllReduce, In: []string{x.sym}, Out: []string{out.sym},
		Attr: ir.Attrs{Strs: map[string]string{"reduce": ir.ReduceSum}}, Group: g, Role: role})
	return out
}
