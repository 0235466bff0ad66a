package verify

import "github.com/spcheck/spcheck/trace"

// canDepend reports whether tensor res can be computed from root: inputs and parameters depend on
// nothing, a parameter gradient feeds nothing later in the step, the forward does not read the
// backward, and nothing depends on what comes after it.
func canDepend(res, root *Result) bool {
	switch {
	case res.Order < root.Order:
		return false
	case res.Kind == trace.Input || res.Kind == trace.Param:
		return false
	case root.Kind == trace.ParamGrad:
		return false
	case backward(root.Kind) && !backward(res.Kind):
		return false
	}
	return true
}

func backward(k trace.Kind) bool { return k == trace.ActivationGrad || k == trace.ParamGrad }

// dependsOn lists the roots res can depend on.
func dependsOn(res *Result, roots []*Result) []*Result {
	var out []*Result
	for _, r := range roots {
		if r != res && canDepend(res, r) {
			out = append(out, r)
		}
	}
	return out
}

// ownMechanism reports whether res's explanation is structural and differs from that of every
// root it can depend on: a second bug, not a consequence of the first.
func ownMechanism(res *Result, parents []*Result) bool {
	x := res.Explanation
	if x == nil || !x.Mechanism.structural() {
		return false
	}
	for _, p := range parents {
		if p.Explanation == nil || p.Explanation.Mechanism == x.Mechanism {
			return false
		}
	}
	return true
}

// Roots lists every root: the first divergence and each independent root after it, in
// execution order, each with its Explanation.
func (r *Report) Roots() []*Result {
	var out []*Result
	for _, res := range r.Results {
		if res.Role == Root || res.Role == Independent {
			out = append(out, res)
		}
	}
	return out
}

// Sentences are the one-line explanations of every root, in execution order: what a report
// says first.
func (r *Report) Sentences() []string {
	var out []string
	for _, res := range r.Roots() {
		if res.Explanation != nil {
			out = append(out, res.Explanation.Sentence)
		}
	}
	return out
}
