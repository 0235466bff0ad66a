package verifytest

import (
	"math"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Scenario is a reference and a candidate trace with a known outcome.
type Scenario struct {
	Name   string
	Reason string
	Ref    *Ranks
	Cand   *Ranks
}

// Traces builds both traces in memory.
func (s Scenario) Traces() (ref, cand *trace.Trace, err error) {
	if ref, err = s.Ref.Trace(); err != nil {
		return nil, nil, err
	}
	cand, err = s.Cand.Trace()
	return ref, cand, err
}

var oracle = Provenance{Producer: "oracle", Plan: "hidden=16,layers=2", Seed: 1}

func concat(parts ...[]float64) []float64 {
	var out []float64
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func scale(c float64, v []float64) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = c * x
	}
	return out
}

// Seed001 is PaddleFleet#589: partial send/recv left on under sequence
// parallelism, tp=2, the boundary gradient 8 elements per rank. branch "develop" has NormPipe
// before the boundary (backward ×2), "unify" an identity EmptyLayer. Every receiver holds
// concat_q chunk_q(X_q); the correct value is its own sender's X_t.
func Seed001(branch string) Scenario {
	lmHead := [2][]float64{{10, 20, 30, 40, 50, 60, 70, 80}, {90, 100, 110, 120, 130, 140, 150, 160}}
	c := 1.0
	if branch == "develop" {
		c = 2
	}
	x := [2][]float64{scale(c, lmHead[0]), scale(c, lmHead[1])}
	recv := concat(x[0][:4], x[1][4:])
	prov := Provenance{Producer: "paddle", Plan: "tp=2,pp=2,sp=megatron,partial_p2p=true", Seed: 589}
	ref := Single("ref-"+branch, oracle).
		Add(0, "loss", Meta("loss/main", trace.Loss, 90, ""), tensor.F64, nil, 3.25).
		Add(0, "gout", Meta("agrad/layers.1.output", trace.ActivationGrad, 200, "", 16), tensor.F64, []int{16}, concat(x[0], x[1])...).
		Add(0, "gw", Meta("grad/layers.0.mlp.fc2.weight", trace.ParamGrad, 210, "", 2, 2), tensor.F64, []int{2, 2}, 1, 2, 3, 4)
	cand := TP("cand-"+branch, 2, prov).
		AddAll("loss", Meta("loss/main", trace.Loss, 90, ""), tensor.F64, nil, 3.25).
		AddAll("gout", Meta("agrad/layers.1.output", trace.ActivationGrad, 200, "tp=shard(0)", 16), tensor.F64, []int{8}, recv...).
		Add(0, "gw", Meta("grad/layers.0.mlp.fc2.weight", trace.ParamGrad, 210, "tp=shard(0)", 2, 2), tensor.F64, []int{1, 2}, 1, 2).
		Add(1, "gw", Meta("grad/layers.0.mlp.fc2.weight", trace.ParamGrad, 210, "tp=shard(0)", 2, 2), tensor.F64, []int{1, 2}, 3+0.25*c, 4+0.25*c)
	return Scenario{Name: "seed001-" + branch, Reason: "PaddleFleet#589: the receivers all hold [chunk0(X0), chunk1(X1)]; lost values per rank", Ref: ref, Cand: cand}
}

// Seed002 is vLLM's residual sliced at offset 0 on every TP rank (vLLM #33322): tp=2,
// N=4 tokens, H=2; rank 0's rows are right, rank 1's are residual rows 0..1 plus its own
// reduce-scatter rows. The candidate is fp32 against an fp64 reference.
func Seed002() Scenario {
	ar := []float64{11, 22, 33, 44, 55, 66, 0, 0}
	resid := []float64{100, -100, 200, -50, 300, 0, 0, 0}
	refOut := add(ar, resid)
	bugOut := concat(add(ar[:4], resid[:4]), add(ar[4:], resid[:4]))
	refY, bugY := rmsRows(refOut), rmsRows(bugOut)
	prov := Provenance{Producer: "vllm", Plan: "tp=2,sp=vllm", Seed: 33322}
	ref := Single("ref-seed002", oracle).
		Add(0, "x", Meta("act/layers.0.allreduce", trace.Activation, 10, "", 4, 2), tensor.F64, []int{4, 2}, ar...).
		Add(0, "r", Meta("act/layers.0.residual_out", trace.Activation, 11, "", 4, 2), tensor.F64, []int{4, 2}, refOut...).
		Add(0, "y", Meta("act/layers.0.norm_out", trace.Activation, 12, "", 4, 2), tensor.F64, []int{4, 2}, refY...)
	cand := TP("cand-seed002", 2, prov)
	for t := 0; t < 2; t++ {
		cand.Add(t, "x", Meta("act/layers.0.allreduce", trace.Activation, 10, "tp=shard(0)", 4, 2), tensor.F32, []int{2, 2}, ar[4*t:4*t+4]...).
			Add(t, "r", Meta("act/layers.0.residual_out", trace.Activation, 11, "tp=shard(0)", 4, 2), tensor.F32, []int{2, 2}, bugOut[4*t:4*t+4]...).
			Add(t, "y", Meta("act/layers.0.norm_out", trace.Activation, 12, "", 4, 2), tensor.F32, []int{4, 2}, bugY...)
	}
	return Scenario{Name: "seed002", Reason: "vLLM #33322: residual[0:L] on every rank; rank 0 right, rank 1 rows wrong", Ref: ref, Cand: cand}
}

func add(a, b []float64) []float64 {
	out := make([]float64, len(a))
	for i := range a {
		out[i] = a[i] + b[i]
	}
	return out
}

// rmsRows is RMSNorm (eps 1e-6, weight 1) of each row of an [N,2] tensor, as in the hand-worked example.
func rmsRows(v []float64) []float64 {
	out := make([]float64, len(v))
	for i := 0; i < len(v); i += 2 {
		s := math.Sqrt((float64(v[i]*v[i])+float64(v[i+1]*v[i+1]))/2 + 1e-6) // no FMA: same bits on every GOARCH
		out[i], out[i+1] = v[i]/s, v[i+1]/s
	}
	return out
}

// ScaledTP is Megatron's eh_proj gather with the wrong adjoint (Megatron-LM 06e9f28b30): tp=2, H=4,
// G=[1,2,3,4]; correct rank grads [1,2] and [3,4], buggy [2,4] and [6,8]; the weight grad
// upstream is ×tp too.
func ScaledTP() Scenario {
	prov := Provenance{Producer: "simulate", Plan: "tp=2,mtp=1,bug=eh_proj_gather", Seed: 7}
	ref := Single("ref-scaled", oracle).
		Add(0, "g", Meta("agrad/mtp.0.eh_proj.in", trace.ActivationGrad, 300, "", 1, 4), tensor.F64, []int{1, 4}, 1, 2, 3, 4).
		Add(0, "w", Meta("grad/mtp.0.eh_proj.weight", trace.ParamGrad, 301, "", 2, 2), tensor.F64, []int{2, 2}, 0.5, -1.5, 2.25, 4)
	cand := TP("cand-scaled", 2, prov).
		Add(0, "g", Meta("agrad/mtp.0.eh_proj.in", trace.ActivationGrad, 300, "tp=shard(1)", 1, 4), tensor.F64, []int{1, 2}, 2, 4).
		Add(1, "g", Meta("agrad/mtp.0.eh_proj.in", trace.ActivationGrad, 300, "tp=shard(1)", 1, 4), tensor.F64, []int{1, 2}, 6, 8).
		Add(0, "w", Meta("grad/mtp.0.eh_proj.weight", trace.ParamGrad, 301, "tp=shard(0)", 2, 2), tensor.F64, []int{1, 2}, 1, -3).
		Add(1, "w", Meta("grad/mtp.0.eh_proj.weight", trace.ParamGrad, 301, "tp=shard(0)", 2, 2), tensor.F64, []int{1, 2}, 4.5, 8)
	return Scenario{Name: "scaled-tp", Reason: "Megatron-LM 06e9f28b30: grads ×tp from the eh_proj gather's reduce-scatter adjoint", Ref: ref, Cand: cand}
}

// ReplicaSplit is an SP norm weight whose grads were not all-reduced over TP (PaddleFleet
// #1146/#1154/#1162): per-token contributions [1,2,3,4] give rank grads 3 and 7 where both must hold 10. The
// second weight was reduced with AVG instead of SUM: 5 on both, ×1/tp.
func ReplicaSplit() Scenario {
	prov := Provenance{Producer: "simulate", Plan: "tp=2,sp=megatron,bug=sp_norm_grad", Seed: 1446}
	ref := Single("ref-replica", oracle).
		Add(0, "n1", Meta("grad/layers.0.norm1.weight", trace.ParamGrad, 400, "", 2), tensor.F64, []int{2}, 10, 20).
		Add(0, "n2", Meta("grad/layers.0.norm2.weight", trace.ParamGrad, 401, "", 2), tensor.F64, []int{2}, 10, 20)
	cand := TP("cand-replica", 2, prov).
		Add(0, "n1", Meta("grad/layers.0.norm1.weight", trace.ParamGrad, 400, "", 2), tensor.F64, []int{2}, 3, 6).
		Add(1, "n1", Meta("grad/layers.0.norm1.weight", trace.ParamGrad, 400, "", 2), tensor.F64, []int{2}, 7, 14).
		AddAll("n2", Meta("grad/layers.0.norm2.weight", trace.ParamGrad, 401, "", 2), tensor.F64, []int{2}, 5, 10)
	return Scenario{Name: "replica-split", Reason: "SP norm grads: replicas 3/7 where both must be 10; AVG gives ×1/tp", Ref: ref, Cand: cand}
}

// NaNRank has a NaN in one element of rank 1's shard.
func NaNRank() Scenario {
	vals := []float64{0.5, -1, 1.5, 2, -2.5, 3, 0.25, -0.75}
	bad := append([]float64{}, vals...)
	bad[5] = math.NaN()
	ref := Single("ref-nan", oracle).
		Add(0, "a", Meta("act/layers.1.attn.out", trace.Activation, 50, "", 4, 2), tensor.F32, []int{4, 2}, vals...)
	cand := TP("cand-nan", 2, Provenance{Producer: "cuda", Plan: "tp=2", Seed: 3}).
		Add(0, "a", Meta("act/layers.1.attn.out", trace.Activation, 50, "tp=shard(0)", 4, 2), tensor.F32, []int{2, 2}, bad[:4]...).
		Add(1, "a", Meta("act/layers.1.attn.out", trace.Activation, 50, "tp=shard(0)", 4, 2), tensor.F32, []int{2, 2}, bad[4:]...)
	return Scenario{Name: "nan-rank", Reason: "a NaN on rank 1 where the reference is finite", Ref: ref, Cand: cand}
}

// Clean is a correct tp=2 run: identical shards, a replicated loss, and a partial sum that
// differs from the reference by rounding only.
func Clean() Scenario {
	ref := Single("ref-clean", oracle).
		Add(0, "loss", Meta("loss/main", trace.Loss, 90, ""), tensor.F64, nil, 2.0625).
		Add(0, "h", Meta("act/layers.0.output", trace.Activation, 10, "", 2, 3), tensor.F64, []int{2, 3}, 1, 2, 3, 4, 5, 6).
		Add(0, "p", Meta("act/layers.0.mlp.down", trace.Activation, 11, "", 2), tensor.F64, []int{2}, 0.3, 0.7)
	cand := TP("cand-clean", 2, Provenance{Producer: "simulate", Plan: "tp=2", Seed: 1}).
		AddAll("loss", Meta("loss/main", trace.Loss, 90, ""), tensor.F64, nil, 2.0625).
		Add(0, "h", Meta("act/layers.0.output", trace.Activation, 10, "tp=shard(1)", 2, 3), tensor.F64, []int{2, 2}, 1, 2, 4, 5).
		Add(1, "h", Meta("act/layers.0.output", trace.Activation, 10, "tp=shard(1)", 2, 3), tensor.F64, []int{2, 1}, 3, 6).
		Add(0, "p", Meta("act/layers.0.mlp.down", trace.Activation, 11, "tp=partial", 2), tensor.F64, []int{2}, 0.1, 0.2).
		Add(1, "p", Meta("act/layers.0.mlp.down", trace.Activation, 11, "tp=partial", 2), tensor.F64, []int{2}, 0.2, 0.5)
	return Scenario{Name: "clean", Reason: "a correct tp=2 run: identical and close", Ref: ref, Cand: cand}
}

// All lists every scenario.
func All() []Scenario {
	return []Scenario{Clean(), Seed001("develop"), Seed001("unify"), Seed002(), ScaledTP(), ReplicaSplit(), NaNRank()}
}
