package model

import (
	"fmt"
	"math"
	"strings"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
)

// ParamSpec is one parameter's logical name (without the "param/" prefix) and shape.
type ParamSpec struct {
	Name  string
	Shape []int
}

// Params maps a parameter's logical name (e.g. "layers.0.attn.q.weight") to its value.
type Params map[string]*tensor.Dense

// NormInitStd is the spread of the norm weights 1 + NormInitStd·N(0,1): not all ones, so a
// gradient that ignores the weight, or a weight grad that is never reduced, shows.
const NormInitStd = 0.1

// layerParamSuffixes are the parameters of one transformer layer, in forward order.
var layerParamSuffixes = []string{
	"attn_norm.weight", "attn.q.weight", "attn.k.weight", "attn.v.weight", "attn.o.weight",
	"mlp_norm.weight", "mlp.gate.weight", "mlp.up.weight", "mlp.down.weight",
}

func layerParamShapes(m plan.Model, prefix string) []ParamSpec {
	h, f := m.Hidden, m.FFN
	shapes := [][]int{{h}, {h, h}, {h, h}, {h, h}, {h, h}, {h}, {f, h}, {f, h}, {h, f}}
	out := make([]ParamSpec, len(shapes))
	for i, s := range shapes {
		out[i] = ParamSpec{prefix + layerParamSuffixes[i], s}
	}
	return out
}

// ParamShapes lists every parameter of m in forward order: embedding, layers, final norm, LM
// head (untied only), then each MTP depth's enorm, hnorm, eh_proj and layer.
func ParamShapes(m plan.Model) []ParamSpec {
	h := m.Hidden
	ps := []ParamSpec{{"embedding.weight", []int{m.Vocab, h}}}
	for i := 0; i < m.Layers; i++ {
		ps = append(ps, layerParamShapes(m, fmt.Sprintf("layers.%d.", i))...)
	}
	ps = append(ps, ParamSpec{"final_norm.weight", []int{h}})
	if !m.Tied {
		ps = append(ps, ParamSpec{"lm_head.weight", []int{m.Vocab, h}})
	}
	for k := 1; k <= m.MTP; k++ {
		p := fmt.Sprintf("mtp.%d.", k)
		ps = append(ps, ParamSpec{p + "enorm.weight", []int{h}}, ParamSpec{p + "hnorm.weight", []int{h}},
			ParamSpec{p + "eh_proj.weight", []int{h, 2 * h}})
		ps = append(ps, layerParamShapes(m, p+"layer.")...)
	}
	return ps
}

// isNorm reports whether a parameter is a norm weight (initialised around 1).
func isNorm(name string) bool { return strings.HasSuffix(name, "norm.weight") }

// InitValue is element flat (the row-major index into the full shape) of parameter name: a
// norm weight is 1 + NormInitStd·N(0,1); any other weight [out,in] (embedding and LM head
// [V,H] included) is N(0,1)/sqrt(in), so activations and logits stay O(1). The normal
// variate comes from tensor.NewRNG(m.Seed, "param/"+name) at flat, so a rank holding a shard
// generates exactly the full tensor's values for its elements.
func InitValue(m plan.Model, name string, shape []int, flat int) float64 {
	return newInit(m, name, shape).at(flat)
}

// InitParam returns the full initial value of parameter name of the given shape.
func InitParam(m plan.Model, name string, shape []int) *tensor.Dense {
	gen := newInit(m, name, shape)
	t := tensor.New(shape...)
	for i := range t.Data {
		t.Data[i] = gen.at(i)
	}
	return t
}

// InitRule is how InitValue turns the normal variate n of an element into its value: 1 + Std·n
// for a norm weight (Norm), n/√FanIn for any other weight (FanIn: the last dim of its full
// shape). Emitted plans carry it (simulate.Generated) so an executor can generate its shards
// itself, bit for bit, instead of reading them from files.
type InitRule struct {
	Norm  bool    `json:"norm"`
	Std   float64 `json:"std,omitempty"`
	FanIn int     `json:"fan_in,omitempty"`
}

// InitRuleOf is parameter name's rule for its full shape.
func InitRuleOf(name string, shape []int) InitRule {
	if isNorm(name) {
		return InitRule{Norm: true, Std: NormInitStd}
	}
	return InitRule{FanIn: shape[len(shape)-1]}
}

// Value is the element's value for the normal variate n.
func (r InitRule) Value(n float64) float64 {
	if r.Norm {
		return 1 + r.Std*n
	}
	return n / math.Sqrt(float64(r.FanIn))
}

// paramInit generates one parameter's elements (InitValue's rule).
type paramInit struct {
	rng  tensor.RNG
	rule InitRule
}

func newInit(m plan.Model, name string, shape []int) paramInit {
	return paramInit{rng: tensor.NewRNG(m.Seed, "param/"+name), rule: InitRuleOf(name, shape)}
}

func (p paramInit) at(flat int) float64 { return p.rule.Value(p.rng.Normal(uint64(flat))) }

// InitParams returns every parameter of m.
func InitParams(m plan.Model) Params {
	p := Params{}
	for _, s := range ParamShapes(m) {
		p[s.Name] = InitParam(m, s.Name, s.Shape)
	}
	return p
}
