package oracle

import (
	"github.com/spcheck/spcheck/model"
	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/tensor"
)

// layerWeights are one pre-norm transformer layer's parameters.
type layerWeights struct {
	attnNorm, q, k, v, o, mlpNorm, gate, up, down *tensor.Dense
}

func layerOf(p model.Params, prefix string) layerWeights {
	g := func(s string) *tensor.Dense { return p[prefix+s] }
	return layerWeights{g("attn_norm.weight"), g("attn.q.weight"), g("attn.k.weight"), g("attn.v.weight"),
		g("attn.o.weight"), g("mlp_norm.weight"), g("mlp.gate.weight"), g("mlp.up.weight"), g("mlp.down.weight")}
}

// layerState is what a layer's backward needs from its forward.
type layerState struct {
	x, a, q, k, v, qr, kr, probs, ctx, h, mn, gate, up, act *tensor.Dense // [B,S,·]; q…kr viewed [B,S,heads,hd]
	rstdA, rstdM                                            []float64
}

// layerForward runs one layer on x [B,S,H] and returns its output (the residual stream after
// it; the caller records it). name is "layers.{i}" or "mtp.{k}.layer".
func (g *graph) layerForward(name string, w layerWeights, x *tensor.Dense) (*tensor.Dense, *layerState) {
	r, n := g.rec, name+"."
	st := &layerState{x: x}
	st.a, st.rstdA = nn.RMSNorm(x, w.attnNorm)
	r.act(n+"attn_norm", st.a)
	st.q = r.act(n+"attn.q", nn.Linear(st.a, w.q)).Reshape(g.heads4()...)
	st.k = r.act(n+"attn.k", nn.Linear(st.a, w.k)).Reshape(g.heads4()...)
	st.v = r.act(n+"attn.v", nn.Linear(st.a, w.v)).Reshape(g.heads4()...)
	st.qr = r.act(n+"attn.q_rope", nn.RoPE(st.q, g.pos).Reshape(g.bsh()...)).Reshape(g.heads4()...)
	st.kr = r.act(n+"attn.k_rope", nn.RoPE(st.k, g.pos).Reshape(g.bsh()...)).Reshape(g.heads4()...)
	ctx, probs := nn.Attention(st.qr, st.kr, st.v, g.cu)
	st.probs = probs
	st.ctx = r.act(n+"attn.context", ctx.Reshape(g.bsh()...))
	attnOut := r.act(n+"attn_out", nn.Linear(st.ctx, w.o))
	st.h = r.act(n+"attn_residual", add(x, attnOut))
	st.mn, st.rstdM = nn.RMSNorm(st.h, w.mlpNorm)
	r.act(n+"mlp_norm", st.mn)
	st.gate = r.act(n+"mlp.gate", nn.Linear(st.mn, w.gate))
	st.up = r.act(n+"mlp.up", nn.Linear(st.mn, w.up))
	st.act = r.act(n+"mlp.act", nn.SwiGLU(st.gate, st.up))
	mlpOut := r.act(n+"mlp_out", nn.Linear(st.act, w.down))
	return add(st.h, mlpOut), st
}

// layerBackward takes the gradient of the layer's output and returns the gradient of its
// input, recording the activation grads and the layer's parameter grads as it goes.
func (g *graph) layerBackward(name string, w layerWeights, st *layerState, dout *tensor.Dense) *tensor.Dense {
	r, n := g.rec, name+"."
	dmo := r.agrad(n+"mlp_out", dout.Clone())
	dact, dDown := nn.LinearBackward(st.act, w.down, dmo)
	r.agrad(n+"mlp.act", dact)
	r.grad(n+"mlp.down.weight", dDown)
	dgate, dup := nn.SwiGLUBackward(st.gate, st.up, dact)
	r.agrad(n+"mlp.gate", dgate)
	r.agrad(n+"mlp.up", dup)
	dmn := add(nn.LinearGradInput(w.gate, dgate, st.mn.Shape), nn.LinearGradInput(w.up, dup, st.mn.Shape))
	r.grad(n+"mlp.gate.weight", nn.LinearGradWeight(st.mn, dgate))
	r.grad(n+"mlp.up.weight", nn.LinearGradWeight(st.mn, dup))
	r.agrad(n+"mlp_norm", dmn)
	dh2, dMlpNorm := nn.RMSNormBackward(st.h, w.mlpNorm, st.rstdM, dmn)
	r.grad(n+"mlp_norm.weight", dMlpNorm)
	dh := r.agrad(n+"attn_residual", add(dout, dh2))
	dao := r.agrad(n+"attn_out", dh.Clone())
	dctx, dO := nn.LinearBackward(st.ctx, w.o, dao)
	r.agrad(n+"attn.context", dctx)
	r.grad(n+"attn.o.weight", dO)
	dqr, dkr, dv := nn.AttentionBackward(st.qr, st.kr, st.v, st.probs, dctx.Reshape(g.heads4()...), g.cu)
	r.agrad(n+"attn.q_rope", dqr.Reshape(g.bsh()...))
	r.agrad(n+"attn.k_rope", dkr.Reshape(g.bsh()...))
	dq := r.agrad(n+"attn.q", nn.RoPEBackward(dqr, g.pos).Reshape(g.bsh()...))
	dk := r.agrad(n+"attn.k", nn.RoPEBackward(dkr, g.pos).Reshape(g.bsh()...))
	dv = r.agrad(n+"attn.v", dv.Reshape(g.bsh()...))
	aShape := st.a.Shape
	da := add(add(nn.LinearGradInput(w.q, dq, aShape), nn.LinearGradInput(w.k, dk, aShape)), nn.LinearGradInput(w.v, dv, aShape))
	r.grad(n+"attn.q.weight", nn.LinearGradWeight(st.a, dq))
	r.grad(n+"attn.k.weight", nn.LinearGradWeight(st.a, dk))
	r.grad(n+"attn.v.weight", nn.LinearGradWeight(st.a, dv))
	r.agrad(n+"attn_norm", da)
	dx2, dAttnNorm := nn.RMSNormBackward(st.x, w.attnNorm, st.rstdA, da)
	r.grad(n+"attn_norm.weight", dAttnNorm)
	return add(dh, dx2)
}

// add returns a+b as a new tensor (recorded tensors are never modified in place).
func add(a, b *tensor.Dense) *tensor.Dense {
	c := a.Clone()
	c.AddInPlace(b)
	return c
}
