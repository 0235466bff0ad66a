package oracle

import (
	"fmt"
	"github.com/spcheck/spcheck/model"

	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Run computes m's forward and backward on its deterministic parameters and inputs. A model
// whose footprint (EstimateMemory) exceeds the machine's memory is refused with a
// *MemoryError before anything is allocated.
func Run(m plan.Model) (*Result, error) {
	if err := checkModel(m); err != nil {
		return nil, err
	}
	p := plan.Default()
	p.Model = m
	if err := CheckMemory(p, false); err != nil {
		return nil, err
	}
	return RunWith(m, model.InitParams(m), model.MakeInputs(m))
}

// RunWith computes the forward and backward of m on the given parameters and inputs (e.g. one
// sequence of a packed batch run alone). in.CuSeqlens is used as given for attention, RoPE
// positions and MTP rolls, even where it differs from m.CuSeqlens() (to evaluate another
// packing); it must tile [0, m.Seq). Bad parameters or inputs are returned as errors.
func RunWith(m plan.Model, p model.Params, in model.Inputs) (*Result, error) {
	g, err := newGraph(m, p, in, nil)
	if err != nil {
		return nil, err
	}
	g.forward()
	g.backward()
	return &g.rec.res, nil
}

// checkModel validates m as plan.Validate does, with the parallel settings (which the oracle
// ignores) at their defaults.
func checkModel(m plan.Model) error {
	p := plan.Default()
	p.Model = m
	return p.Validate()
}

// graph is one run: the model, its parameters and inputs, and what the forward saved for the
// backward.
type graph struct {
	m   plan.Model
	p   model.Params
	in  model.Inputs
	rec *recorder

	ids, labels []int
	mask        []float64
	cu, pos     []int

	// saved by the forward
	layers []*layerState
	xLast  *tensor.Dense // residual stream after the last layer
	h0     *tensor.Dense // final_norm(xLast), the main head's input and depth 1's hidden
	rstd0  []float64
	logits *tensor.Dense
	ce     nn.CE
	depths []*depthState
}

// depthState is what MTP depth k's backward needs.
type depthState struct {
	k              int
	ids, labels    []int
	mask           []float64
	emb, en, hPrev *tensor.Dense
	hn, cat        *tensor.Dense
	rstdE, rstdH   []float64
	layer          *layerState
	u, h           *tensor.Dense // layer output and final_norm(u)
	rstdF          []float64
	logits         *tensor.Dense
	ce             nn.CE
}

func newGraph(m plan.Model, p model.Params, in model.Inputs, hook func(string, *tensor.Dense)) (*graph, error) {
	if err := checkModel(m); err != nil {
		return nil, err
	}
	if err := checkParams(p, m); err != nil {
		return nil, err
	}
	if err := checkInputs(in, m); err != nil {
		return nil, err
	}
	g := &graph{m: m, p: p, in: in, rec: newRecorder(hook),
		ids: ints(in.IDs.Data), labels: ints(in.Labels.Data), mask: in.LossMask.Data,
		cu: in.CuSeqlens, pos: nn.Positions(m.Batch, in.CuSeqlens)}
	return g, nil
}

func (g *graph) bsh() []int    { return []int{g.m.Batch, g.m.Seq, g.m.Hidden} }
func (g *graph) heads4() []int { return []int{g.m.Batch, g.m.Seq, g.m.Heads, g.m.HeadDim()} }

// head is the LM head weight: the embedding when tied.
func (g *graph) head() *tensor.Dense {
	if g.m.Tied {
		return g.p["embedding.weight"]
	}
	return g.p["lm_head.weight"]
}

// forward records the inputs, the parameters, every activation and the losses.
func (g *graph) forward() {
	r := g.rec
	r.add(trace.Input, "input/ids", g.in.IDs)
	r.add(trace.Input, "input/labels", g.in.Labels)
	r.add(trace.Input, "input/loss_mask", g.in.LossMask)
	r.add(trace.Input, "input/cu_seqlens", cuTensor(g.cu))
	for _, s := range model.ParamShapes(g.m) {
		r.add(trace.Param, "param/"+s.Name, g.p[s.Name])
	}
	x := r.act("embed", nn.Embedding(g.ids, g.p["embedding.weight"]).Reshape(g.bsh()...))
	for i := 0; i < g.m.Layers; i++ {
		name := fmt.Sprintf("layers.%d", i)
		out, st := g.layerForward(name, layerOf(g.p, name+"."), x)
		g.layers = append(g.layers, st)
		x = r.act(name+".output", out)
	}
	g.xLast = x
	g.h0, g.rstd0 = nn.RMSNorm(x, g.p["final_norm.weight"])
	r.act("final_norm", g.h0)
	g.logits = r.act("logits", nn.Linear(g.h0, g.head()))
	g.ce = nn.CrossEntropy(g.logits, g.labels, g.mask)
	total := r.loss("main", g.ce.Loss)
	hPrev := g.h0
	mtpSum := 0.0
	for k := 1; k <= g.m.MTP; k++ {
		d := g.depthForward(k, hPrev)
		g.depths = append(g.depths, d)
		mtpSum += d.ce.Loss
		hPrev = d.h
	}
	if g.m.MTP > 0 {
		total += g.mtpScale() * mtpSum
	}
	r.loss("total", total)
}

// mtpScale is λ/D, the weight of every depth's loss in the total.
func (g *graph) mtpScale() float64 { return g.m.MTPLambda / float64(g.m.MTP) }

// depthForward runs MTP depth k on the previous depth's hidden hPrev (depth 1: the main
// model's final-norm output, as Megatron-LM's decoder applies its final layernorm before the
// MTP block).
func (g *graph) depthForward(k int, hPrev *tensor.Dense) *depthState {
	r, n := g.rec, fmt.Sprintf("mtp.%d.", k)
	d := &depthState{k: k, hPrev: hPrev}
	// Megatron's roll_tensor with its 0 fill, per sequence, k times: ids, labels and loss mask.
	idsK := r.add(trace.Input, "input/"+n+"ids", nn.RollSequences(g.in.IDs, g.cu, k, 0))
	labK := r.add(trace.Input, "input/"+n+"labels", nn.RollSequences(g.in.Labels, g.cu, k, 0))
	maskK := r.add(trace.Input, "input/"+n+"loss_mask", nn.RollSequences(g.in.LossMask, g.cu, k, 0))
	d.ids, d.labels, d.mask = ints(idsK.Data), ints(labK.Data), maskK.Data
	d.emb = r.act(n+"embed", nn.Embedding(d.ids, g.p["embedding.weight"]).Reshape(g.bsh()...))
	d.en, d.rstdE = nn.RMSNorm(d.emb, g.p[n+"enorm.weight"])
	r.act(n+"enorm", d.en)
	d.hn, d.rstdH = nn.RMSNorm(hPrev, g.p[n+"hnorm.weight"])
	r.act(n+"hnorm", d.hn)
	d.cat = tensor.Concat(2, d.en, d.hn) // [enorm(embedding) ; hnorm(hidden)], Megatron's order
	z := r.act(n+"eh_proj", nn.Linear(d.cat, g.p[n+"eh_proj.weight"]))
	out, st := g.layerForward(n+"layer", layerOf(g.p, n+"layer."), z)
	d.layer = st
	d.u = r.act(n+"output", out)
	d.h, d.rstdF = nn.RMSNorm(d.u, g.p["final_norm.weight"])
	r.act(n+"final_norm", d.h)
	d.logits = r.act(n+"logits", nn.Linear(d.h, g.head()))
	d.ce = nn.CrossEntropy(d.logits, d.labels, d.mask)
	r.loss(n[:len(n)-1], d.ce.Loss)
	return d
}

// backward records every gradient, last computation first: the MTP depths D…1 (each passes
// the gradient of its hidden input down to the depth before), the main head and final norm,
// the layers L−1…0, and the embedding. Parameter grads are recorded when complete.
func (g *graph) backward() {
	r := g.rec
	var dHead, dFinal *tensor.Dense
	dEmb := tensor.New(g.m.Vocab, g.m.Hidden)
	var dHidden *tensor.Dense // gradient reaching depth k's output h_k from depth k+1
	for i := len(g.depths) - 1; i >= 0; i-- {
		d := g.depths[i]
		n := fmt.Sprintf("mtp.%d.", d.k)
		dlogits := r.agrad(n+"logits", nn.CrossEntropyBackward(d.logits, d.labels, d.ce.Weights, d.ce.Denom, g.mtpScale()))
		dHead = accumulate(dHead, nn.LinearGradWeight(d.h, dlogits))
		dh := nn.LinearGradInput(g.head(), dlogits, d.h.Shape)
		if dHidden != nil {
			dh = add(dh, dHidden)
		}
		r.agrad(n+"final_norm", dh)
		du, dwF := nn.RMSNormBackward(d.u, g.p["final_norm.weight"], d.rstdF, dh)
		dFinal = accumulate(dFinal, dwF)
		r.agrad(n+"output", du)
		dz := r.agrad(n+"eh_proj", g.layerBackward(n+"layer", layerOf(g.p, n+"layer."), d.layer, du))
		dcat, dEH := nn.LinearBackward(d.cat, g.p[n+"eh_proj.weight"], dz)
		r.grad(n+"eh_proj.weight", dEH)
		parts := dcat.Split(2, g.m.Hidden, g.m.Hidden)
		den, dhn := r.agrad(n+"enorm", parts[0]), r.agrad(n+"hnorm", parts[1])
		demb, dwE := nn.RMSNormBackward(d.emb, g.p[n+"enorm.weight"], d.rstdE, den)
		r.grad(n+"enorm.weight", dwE)
		r.agrad(n+"embed", demb)
		dEmb.AddInPlace(nn.EmbeddingBackward(d.ids, demb, g.m.Vocab))
		var dwH *tensor.Dense
		dHidden, dwH = nn.RMSNormBackward(d.hPrev, g.p[n+"hnorm.weight"], d.rstdH, dhn)
		r.grad(n+"hnorm.weight", dwH)
	}
	dlogits := r.agrad("logits", nn.CrossEntropyBackward(g.logits, g.labels, g.ce.Weights, g.ce.Denom, 1))
	dHead = accumulate(dHead, nn.LinearGradWeight(g.h0, dlogits))
	dh0 := nn.LinearGradInput(g.head(), dlogits, g.h0.Shape)
	if dHidden != nil {
		dh0 = add(dh0, dHidden)
	}
	if g.m.Tied {
		dEmb.AddInPlace(dHead)
	} else {
		r.grad("lm_head.weight", dHead)
	}
	r.agrad("final_norm", dh0)
	dx, dwF := nn.RMSNormBackward(g.xLast, g.p["final_norm.weight"], g.rstd0, dh0)
	r.grad("final_norm.weight", accumulate(dFinal, dwF))
	for i := g.m.Layers - 1; i >= 0; i-- {
		name := fmt.Sprintf("layers.%d", i)
		r.agrad(name+".output", dx)
		dx = g.layerBackward(name, layerOf(g.p, name+"."), g.layers[i], dx)
	}
	r.agrad("embed", dx)
	dEmb.AddInPlace(nn.EmbeddingBackward(g.ids, dx, g.m.Vocab))
	r.grad("embedding.weight", dEmb)
}

// accumulate returns acc + t (t itself when acc is nil), never modifying t.
func accumulate(acc, t *tensor.Dense) *tensor.Dense {
	if acc == nil {
		return t.Clone()
	}
	return add(acc, t)
}
