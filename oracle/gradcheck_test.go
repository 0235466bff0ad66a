package oracle

import (
	"github.com/spcheck/spcheck/model"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/nn/nntest"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
)

// smallPlan parses a small plan for the model checks, failing the test on error.
func smallPlan(t testing.TB, s string) plan.Plan {
	t.Helper()
	// s overrides the small base: apply it on top rather than joining the strings, since a plan
	// string may give each key once.
	p, err := plan.Parse("vocab=11,hidden=8,heads=2,layers=2,ffn=12,batch=2,mtp_lambda=0.3")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(s); err != nil {
		t.Fatal(err)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// totalLoss runs the forward only, letting hook perturb tensors as they are recorded.
func totalLoss(t testing.TB, m plan.Model, p model.Params, in model.Inputs, hook func(string, *tensor.Dense)) float64 {
	g, err := newGraph(m, p, in, hook)
	if err != nil {
		t.Fatal(err)
	}
	g.forward()
	return g.rec.res.Loss("loss/total")
}

// TestGradientsFiniteDifference checks every element of every parameter gradient, every
// element of the embeddings' gradients (main and each MTP depth), and a few elements of every
// other activation gradient against central differences of loss/total, on packed MTP models.
func TestGradientsFiniteDifference(t *testing.T) {
	for _, tc := range scenario.Cases(t, []struct {
		reason string
		plan   string
	}{
		{"untied head, D=2, three packed sequences", "mtp=2,packed=4:3:5,tied=false"},
		{"tied head, D=1, one sequence per row (head grads flow into the embedding)", "mtp=1,seq=6,tied=true,layers=1"},
	}) {
		t.Run(tc.plan, func(t *testing.T) {
			t.Parallel() // the two models are independent: use both cores
			checkModelGrads(t, tc.reason, tc.plan)
		})
	}
}

// checkModelGrads is TestGradientsFiniteDifference on one model.
func checkModelGrads(t *testing.T, reason, planStr string) {
	m := smallPlan(t, planStr).Model
	p, in := model.InitParams(m), model.MakeInputs(m)
	res, err := RunWith(m, p, in)
	if err != nil {
		t.Fatal(err)
	}
	loss := func() float64 { return totalLoss(t, m, p, in, nil) }
	worst := 0.0
	for _, s := range model.ParamShapes(m) {
		num := nntest.NumericGrad(loss, p[s.Name].Data, nil)
		w := nntest.Worst(res.Get("grad/"+s.Name).Data, num)
		worst = max(worst, w.RelErr)
		if w.RelErr > nntest.FDRelTol {
			t.Errorf("%s: grad/%s %v", reason, s.Name, w)
		}
	}
	for _, rec := range res.Records {
		name, ok := strings.CutPrefix(rec.Name, "act/")
		if !ok {
			continue
		}
		an := res.Get("agrad/" + name)
		if an == nil {
			t.Errorf("%s: %s has no agrad/%s", reason, rec.Name, name)
			continue
		}
		idx := sampleIndices(len(an.Data), 4)
		if name == "embed" || strings.HasSuffix(name, ".embed") {
			idx = nil // the inputs' embeddings: every element
		}
		w := nntest.Worst(nntest.Pick(an.Data, idx), activationFD(t, m, p, in, rec.Name, len(an.Data), idx))
		worst = max(worst, w.RelErr)
		if w.RelErr > nntest.FDRelTol {
			t.Errorf("%s: agrad/%s %v", reason, name, w)
		}
	}
	t.Logf("%s: worst relative error %.2g over every parameter and activation checked", reason, worst)
}

// activationFD is the central-difference gradient of loss/total with respect to the elements
// idx of the activation called name (n elements), perturbed through the recorder's hook the
// moment it is computed, before anything downstream reads it.
func activationFD(t testing.TB, m plan.Model, p model.Params, in model.Inputs, name string, n int, idx []int) []float64 {
	delta := make([]float64, n)
	f := func() float64 {
		return totalLoss(t, m, p, in, func(got string, x *tensor.Dense) {
			if got == name {
				for i, d := range delta {
					x.Data[i] += d
				}
			}
		})
	}
	return nntest.NumericGrad(f, delta, idx)
}

// sampleIndices picks k indices spread evenly over [0,n).
func sampleIndices(n, k int) []int {
	idx := make([]int, 0, k)
	for i := 0; i < k && i < n; i++ {
		idx = append(idx, (2*i+1)*n/(2*k))
	}
	return idx
}
