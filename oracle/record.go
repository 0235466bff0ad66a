package oracle

import (
	"fmt"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Record is one traced tensor: its logical name (e.g. "act/layers.0.output"), kind, execution
// order (0, 1, 2, …: inputs, params, forward, then backward) and full value.
type Record struct {
	Name   string
	Kind   trace.Kind
	Order  int
	Tensor *tensor.Dense
}

// Result is every tensor of one oracle run, in execution order.
type Result struct {
	Records []Record
	byName  map[string]int
}

// Get returns the tensor called name, or nil.
func (r *Result) Get(name string) *tensor.Dense {
	if i, ok := r.byName[name]; ok {
		return r.Records[i].Tensor
	}
	return nil
}

// Loss returns the scalar loss called name ("loss/total", "loss/main", "loss/mtp.1", …).
func (r *Result) Loss(name string) float64 {
	if t := r.Get(name); t != nil && len(t.Data) == 1 {
		return t.Data[0]
	}
	panic(fmt.Sprintf("oracle: no scalar loss %q", name))
}

// recorder appends records in execution order. hook, when set (tests only), sees every tensor
// as it is recorded and before anything downstream reads it, so it can perturb it in place.
type recorder struct {
	res  Result
	hook func(name string, t *tensor.Dense)
}

func newRecorder(hook func(string, *tensor.Dense)) *recorder {
	return &recorder{res: Result{byName: map[string]int{}}, hook: hook}
}

// add records t under name and returns it. Every name is recorded once.
func (r *recorder) add(kind trace.Kind, name string, t *tensor.Dense) *tensor.Dense {
	if _, dup := r.res.byName[name]; dup {
		panic(fmt.Sprintf("oracle: tensor %q recorded twice", name))
	}
	if r.hook != nil {
		r.hook(name, t)
	}
	r.res.byName[name] = len(r.res.Records)
	r.res.Records = append(r.res.Records, Record{Name: name, Kind: kind, Order: len(r.res.Records), Tensor: t})
	return t
}

func (r *recorder) act(name string, t *tensor.Dense) *tensor.Dense {
	return r.add(trace.Activation, "act/"+name, t)
}

func (r *recorder) agrad(name string, t *tensor.Dense) *tensor.Dense {
	return r.add(trace.ActivationGrad, "agrad/"+name, t)
}

func (r *recorder) grad(name string, t *tensor.Dense) *tensor.Dense {
	return r.add(trace.ParamGrad, "grad/"+name, t)
}

func (r *recorder) loss(name string, v float64) float64 {
	return r.add(trace.Loss, "loss/"+name, tensor.Scalar(v)).Data[0]
}
