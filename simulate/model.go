package simulate

import (
	"fmt"
	"strings"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate/ir"
)

// Roles of the ops a bug variant is most likely to rewrite.
const (
	RoleEmbedReduce      = "tp.embedding.reduce"    // all-reduce / reduce-scatter of the vocab-parallel embedding
	RoleRowReduce        = "tp.row_parallel.reduce" // all-reduce / reduce-scatter of a row-parallel output
	RoleSeqGather        = "sp.gather"              // all-gather of sequence shards before a column-parallel linear
	RoleResidualSlice    = "sp.residual_slice"      // vLLM: full residual cut to this rank's rows (rank-aware)
	RoleResidualGather   = "pp.sp_residual_gather"  // vLLM PP+SP: receiver all-gathers the scattered residual
	RoleEHProjGather     = "mtp.eh_proj.gather"     // gather_from_tensor_model_parallel_region after eh_proj
	RoleMTPScatter       = "mtp.sp_scatter"         // Megatron SP: eh_proj output cut to sequence shards
	RoleSendForward      = "pp.send_forward"
	RoleRecvForward      = "pp.recv_forward"
	RoleSendBackward     = "pp.send_backward"
	RoleRecvBackward     = "pp.recv_backward"
	RolePartialChunk     = "pp.partial_p2p.chunk"  // sender: flat chunk tp_rank of the tensor
	RolePartialGather    = "pp.partial_p2p.gather" // receiver: all-gather of the chunks over TP
	RoleGradTPSum        = "grad.tp_sum"           // SUM over TP of replicated params' partial grads (SP norms)
	RoleGradEmbeddingSum = "grad.embedding_sum"    // first + last stage embedding grads
	RoleGradDPSum        = "grad.dp_sum"           // SUM over DP replicas
	RoleMTPAttention     = "mtp.attention"         // attention and its adjoint in an MTP depth's layer (attr cu: its cu_seqlens)
	RoleMTPRoPE          = "mtp.rope"              // rope and its adjoint in an MTP depth's layer (attr pos)
	RoleMTPLossGrad      = "mtp.loss.grad"         // ce_grad of an MTP depth's loss (attr scale: λ/D)
	RoleMTPLossScale     = "mtp.loss.scale"        // the λ/D weight of an MTP depth's loss in loss/total
)

// stream is the residual stream of one micro-batch between blocks, in the plan's SP style:
//
//   - off: h is the full residual, replicated over TP;
//   - megatron: h is this rank's rows of the padded sequence;
//   - vllm: the residual is not updated after a block: delta holds the block's row-parallel
//     output (partial) and resid the residual before it (this rank's rows), and the next norm
//     fuses "reduce-scatter + add + norm on local rows + all-gather". At the start of a
//     pipeline stage or MTP depth delta is full and replicated and resid full (or nil): the
//     first norm runs unsharded, and the next fused add must cut the full residual rank-aware.
type stream struct {
	h       *val
	delta   *val
	resid   *val
	pending string // vllm: the logical name of delta+resid (traced when it is formed)
}

// mbData is one micro-batch's inputs on this rank.
type mbData struct {
	ids     *val // stage 0
	labels  *val // last stage: main labels
	weights *val // last stage: main loss weights
	mtp     []*mtpData
}

type mtpData struct{ ids, labels, weights *val }

func (b *builder) param(name string) *val {
	v := b.params[name]
	if v == nil {
		panic(fmt.Sprintf("simulate: rank %d (stage %d) has no parameter %s", b.rank, b.c.pp, name))
	}
	return v
}

func (b *builder) bsh(h int) []int { return []int{b.l.rows, b.l.p.Seq, h} }

// padSeq pads a [B,S,·] value to the padded sequence length (for a reduce-scatter).
func (b *builder) padSeq(x *val) *val { return b.pad(x, 1, b.l.seqPad-b.l.p.Seq) }

// unpadSeq drops the sequence padding of a gathered [B,Sp,·] value.
func (b *builder) unpadSeq(x *val) *val {
	out := b.narrow(x, 1, 0, b.l.p.Seq)
	out.gathered = x.gathered
	return out
}

// addBlockOutput adds a block's row-parallel output p (partial [B,S,H]) to the stream, in
// the stream's style, and traces the new residual as name.
func (b *builder) addBlockOutput(st *stream, p *val, name string) {
	switch b.l.sp {
	case plan.SPOff:
		st.h = b.act(b.addG(st.h, b.reduceTP(p, RoleRowReduce)), name)
	case plan.SPMegatron:
		st.h = b.act(b.addG(st.h, b.reduceScatterSeq(b.padSeq(p), RoleRowReduce)), name)
	case plan.SPVLLM:
		st.delta, st.pending = p, name
	}
}

// normIn applies a pre-norm to the stream and returns the norm's own output (traced as
// normName) and the full replicated input of the column-parallel linears that follow.
func (b *builder) normIn(st *stream, w *val, normName string) (normOut, blockIn *val) {
	switch b.l.sp {
	case plan.SPOff:
		y := b.act(b.rmsnorm(st.h, w), normName)
		return y, b.copyTP(y)
	case plan.SPMegatron:
		y := b.act(b.rmsnorm(st.h, w), normName)
		return y, b.unpadSeq(b.gatherSeq(y, RoleSeqGather))
	}
	r := b.vllmResidual(st)
	y := b.act(b.rmsnorm(r, w), normName)
	if r.pl == rep { // the first norm of a stage or depth runs unsharded
		return y, b.copyTP(y)
	}
	return y, b.unpadSeq(b.gatherSeq(y, RoleSeqGather))
}

// vllmResidual forms delta + resid, the input of a fused add-norm, as vLLM's SP rewrite does.
func (b *builder) vllmResidual(st *stream) *val {
	var r *val
	switch {
	case st.delta.pl == part: // a row-parallel output: reduce-scatter, add the local residual rows
		r = b.reduceScatterSeq(b.padSeq(st.delta), RoleRowReduce)
		if st.resid != nil {
			resid := st.resid
			if resid.pl == rep { // full residual after an unsharded first norm: rank-aware slice
				resid = b.scatterSeq(b.padSeq(resid), RoleResidualSlice)
			}
			r = b.addG(r, resid)
		}
	case st.resid != nil: // full hidden states + full residual at a stage start
		r = b.addG(st.delta, st.resid)
	default: // a depth's input (eh_proj output) is its first residual
		r = st.delta
	}
	if st.pending != "" {
		b.act(r, st.pending)
	}
	st.delta, st.resid, st.pending = nil, r, ""
	return r
}

// layer emits one transformer layer (prefix "layers.i" or "mtp.k.layer") on the stream; out
// is the logical name of its output.
func (b *builder) layer(st *stream, prefix, out string) {
	n := prefix + "."
	p := func(s string) *val { return b.param(n + s) }
	hl, nh, hd := b.l.hiddenLoc, b.l.headsLoc, b.l.p.HeadDim()
	heads := []int{b.l.rows, b.l.p.Seq, nh, hd}
	pos := b.l.pos
	ropeRole, attnRole := "", ""
	if strings.HasPrefix(prefix, "mtp.") {
		ropeRole, attnRole = RoleMTPRoPE, RoleMTPAttention
	}
	defer b.region(prefix, len(b.ops), st)

	_, a := b.normIn(st, p("attn_norm.weight"), n+"attn_norm")
	q := b.act(b.linear(a, p("attn.q.weight")), n+"attn.q")
	k := b.act(b.linear(a, p("attn.k.weight")), n+"attn.k")
	v := b.act(b.linear(a, p("attn.v.weight")), n+"attn.v")
	qr := b.act(b.reshape(b.rope(b.reshape(q, heads...), pos, ropeRole), b.bsh(hl)...), n+"attn.q_rope")
	kr := b.act(b.reshape(b.rope(b.reshape(k, heads...), pos, ropeRole), b.bsh(hl)...), n+"attn.k_rope")
	ctx := b.attention(b.reshape(qr, heads...), b.reshape(kr, heads...), b.reshape(v, heads...), b.l.cu, attnRole)
	ctx = b.act(b.reshape(ctx, b.bsh(hl)...), n+"attn.context")
	o := b.act(b.linear(ctx, p("attn.o.weight")), n+"attn_out")
	b.addBlockOutput(st, o, n+"attn_residual")

	_, m := b.normIn(st, p("mlp_norm.weight"), n+"mlp_norm")
	gate := b.act(b.linear(m, p("mlp.gate.weight")), n+"mlp.gate")
	up := b.act(b.linear(m, p("mlp.up.weight")), n+"mlp.up")
	act := b.act(b.swiglu(gate, up), n+"mlp.act")
	down := b.act(b.linear(act, p("mlp.down.weight")), n+"mlp_out")
	b.addBlockOutput(st, down, out)
}

// embedFirst starts the stream of stage 0 from token ids.
func (b *builder) embedFirst(ids *val) *stream {
	e := b.embed(ids, b.param("embedding.weight"))
	switch b.l.sp {
	case plan.SPOff:
		return &stream{h: b.act(b.reduceTP(e, RoleEmbedReduce), "embed")}
	case plan.SPMegatron:
		return &stream{h: b.act(b.reduceScatterSeq(b.padSeq(e), RoleEmbedReduce), "embed")}
	}
	return &stream{delta: e, pending: "embed"}
}

// head is the final norm, LM head and cross-entropy of the main model (k = 0) or of MTP depth
// k. It returns the loss and the final norm's output (the next depth's hidden input: sequence
// shards under Megatron SP, full otherwise).
func (b *builder) head(st *stream, k int, labels, weights *val, coef float64) (loss, hidden *val) {
	pre := ""
	if k > 0 {
		pre = fmt.Sprintf("mtp.%d.", k)
	}
	y, x := b.normIn(st, b.param("final_norm.weight"), pre+"final_norm")
	if b.l.sp == plan.SPVLLM {
		y = x // the next depth's hnorm runs unsharded on the gathered hidden
	}
	headName := "lm_head.weight"
	if b.l.p.Tied {
		headName = "embedding.weight"
	}
	w := b.param(headName)
	logits := b.act(b.linear(x, w), pre+"logits")
	gradRole := ""
	if k > 0 {
		gradRole = RoleMTPLossGrad
	}
	return b.crossEntropy(logits, labels, weights, coef, gradRole), y
}

// mtpDepth emits depth k on the previous depth's hidden (the final-norm output) and returns
// its loss and hidden.
func (b *builder) mtpDepth(k int, hPrev *val, d *mtpData, coef float64) (loss, hidden *val) {
	n := fmt.Sprintf("mtp.%d.", k)
	p := func(s string) *val { return b.param(n + s) }
	e := b.embed(d.ids, b.param("embedding.weight"))
	var cat *val
	if b.l.sp == plan.SPMegatron {
		e = b.act(b.reduceScatterSeq(b.padSeq(e), RoleEmbedReduce), n+"embed")
		en := b.act(b.rmsnorm(e, p("enorm.weight")), n+"enorm")
		hn := b.act(b.rmsnorm(hPrev, p("hnorm.weight")), n+"hnorm")
		cat = b.unpadSeq(b.gatherSeq(b.concat(2, en, hn), RoleSeqGather))
	} else {
		e = b.act(b.reduceTP(e, RoleEmbedReduce), n+"embed")
		en := b.act(b.rmsnorm(e, p("enorm.weight")), n+"enorm")
		hn := b.act(b.rmsnorm(hPrev, p("hnorm.weight")), n+"hnorm")
		cat = b.copyTP(b.concat(2, en, hn))
	}
	z := b.linear(cat, p("eh_proj.weight"))
	if b.l.tp > 1 {
		z = b.gatherLast(z, RoleEHProjGather)
	}
	b.act(z, n+"eh_proj")
	st := &stream{h: z, delta: z}
	if b.l.sp == plan.SPMegatron {
		st.h = b.scatterSeq(b.padSeq(z), RoleMTPScatter)
	}
	b.layer(st, n+"layer", n+"output")
	return b.head(st, k, d.labels, d.weights, coef)
}

// stageForward emits micro-batch b.mb's forward on this rank's stage. recv are the tensors
// received from the previous stage; it returns the tensors to send to the next stage and, on
// the last stage, the losses (main, then each depth).
func (b *builder) stageForward(d *mbData, recv []*val) (send []*val) {
	s := b.c.pp
	lo, hi := b.l.stageLayers[s], b.l.stageLayers[s+1]
	var st *stream
	switch {
	case s == 0:
		st = b.embedFirst(d.ids)
	case b.l.sp == plan.SPVLLM:
		// hidden states (full) and this rank's residual rows; the residual is all-gathered
		// before the stage's first norm, which runs unsharded (vLLM #24021, #33322).
		resid := b.unpadSeq(b.gatherSeq(recv[1], RoleResidualGather))
		st = &stream{delta: recv[0], resid: resid, pending: fmt.Sprintf("layers.%d.output", lo-1)}
	default:
		st = &stream{h: recv[0]}
	}
	for i := lo; i < hi; i++ {
		b.layer(st, fmt.Sprintf("layers.%d", i), fmt.Sprintf("layers.%d.output", i))
	}
	if s < b.l.pp-1 {
		if b.l.sp == plan.SPVLLM {
			return []*val{b.reduceTP(st.delta, RoleRowReduce), st.resid}
		}
		return []*val{st.h}
	}
	b.lastStage(st, d)
	return nil
}

// lastStage emits the main head and the MTP depths, and traces the losses.
func (b *builder) lastStage(st *stream, d *mbData) {
	m := b.l.p.Model
	mtpCoef := 0.0
	if m.MTP > 0 {
		mtpCoef = m.MTPLambda / float64(m.MTP)
	}
	loss, hidden := b.head(st, 0, d.labels, d.weights, 1)
	b.traceLoss(loss, "loss/main")
	total := loss
	for k := 1; k <= m.MTP; k++ {
		var lk *val
		lk, hidden = b.mtpDepth(k, hidden, d.mtp[k-1], mtpCoef)
		b.traceLoss(lk, fmt.Sprintf("loss/mtp.%d", k))
		scaled := b.op(ir.OpScale, []*val{lk}, ir.Attrs{Floats: map[string]float64{"c": mtpCoef}}, &val{sym: b.newSym("loss"), shape: []int{}})
		b.ops[len(b.ops)-1].Role = RoleMTPLossScale
		total = b.addRaw(total, scaled)
	}
	b.traceLoss(total, "loss/total")
}

// traceLoss records this micro-batch's share of a loss: the global loss is the sum over
// replicas and micro-batches (token weights are normalised by the global token count).
func (b *builder) traceLoss(v *val, name string) {
	b.traceAs(v, name, "loss", "dp=partial,mb=partial,pp=stage", []int{}, true)
}
