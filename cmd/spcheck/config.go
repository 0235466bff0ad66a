package main

import (
	"fmt"
	"strings"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// configMismatch tells a comparison of two different configurations (bad input, exit 2) from a
// failed verification (exit 1). The rule: parameters and inputs define a run — the model's
// weights and the data fed to it — while activations, gradients, losses and outputs are what a
// run computes from them. So the traces are of two configurations when
//
//   - both record a plan and the plans' model keys differ (hidden, layers, …; not dtype, seed,
//     the parallel split or the bug), or
//   - a parameter or an input has different global shapes in the two traces.
//
// A shape mismatch on a computed tensor alone (e.g. a padded activation leaking its padding) is
// a bug in the run, and stays a verification failure.
func configMismatch(rep *verify.Report) error {
	var why []string
	if a, err := plan.Parse(rep.Ref.Plan); err == nil && rep.Ref.Plan != "" && rep.Cand.Plan != "" {
		if b, err := plan.Parse(rep.Cand.Plan); err == nil {
			if d := a.ModelDiff(b); len(d) > 0 {
				why = append(why, "their plans describe different models: "+strings.Join(d, ", "))
			}
		}
	}
	var shapes []string
	n := 0
	for _, res := range rep.Results {
		if res.Verdict != verify.ShapeMismatch || (res.Kind != trace.Param && res.Kind != trace.Input) {
			continue
		}
		if n++; n <= maxNamed {
			shapes = append(shapes, fmt.Sprintf("%s %v vs %v", res.Name, res.RefShape, res.CandShape))
		}
	}
	if n > maxNamed {
		shapes = append(shapes, fmt.Sprintf("… %d more", n-maxNamed))
	}
	if n > 0 {
		what := fmt.Sprintf("%d parameters and inputs differ", n)
		if n == 1 {
			what = "1 parameter or input differs"
		}
		why = append(why, fmt.Sprintf("%s in shape (reference vs candidate): %s", what, strings.Join(shapes, "; ")))
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("the traces are of two different configurations, so there is nothing to verify (exit 2, not a verification failure): %s", strings.Join(why, "; "))
}

// maxNamed is how many tensors a one-line message names before it counts the rest.
const maxNamed = 3
