package simtest

import (
	"fmt"
	"strings"

	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/verify"
)

// Check runs p through the oracle and the simulator and compares them. It returns nil when
// every reassembled tensor is within tolerance, else an error listing the first failures and
// the command that reproduces them.
func Check(p plan.Plan) error {
	rep, err := pipeline.Verify(p, nil, verify.Options{SkipHashes: true})
	if err != nil {
		return fmt.Errorf("%v\n  reproduce: %s", err, pipeline.VerifyCommand(p))
	}
	if rep.Verified() {
		return nil
	}
	return failures(p, rep)
}

// failures lists the first failing tensors of rep and the command that reproduces p's check.
func failures(p plan.Plan, rep *verify.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "plan %s: %d tensors fail", p, rep.Failures())
	shown := 0
	for _, r := range rep.Results {
		if rep.Failed(r) && shown < 8 {
			fmt.Fprintf(&b, "\n  %-40s %-16s order %d max rel %.3g", r.Name, r.Verdict, r.Order, r.MaxRel)
			shown++
		}
	}
	fmt.Fprintf(&b, "\n  reproduce: %s", pipeline.VerifyCommand(p))
	return fmt.Errorf("%s", b.String())
}
