package simtest

import (
	"fmt"
	"testing"

	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/verify"
)

func TestBugProbe(t *testing.T) {
	p, _ := plan.Parse("tp=2,hidden=32,heads=2,ffn=64,seq=512,batch=4,mtp=0,layers=1,dtype=bf16")
	ref, _ := pipeline.Reference(p)
	opt, err := pipeline.WithNoise(p, ref, verify.Options{SkipHashes: true}); if err != nil { t.Fatal(err) }
	c, _ := simulate.Compile(p, nil)
	n := 0
	for i := range c.Programs[1].Ops {
		if op := &c.Programs[1].Ops[i]; op.Op == ir.OpLinearGradWeight {
			op.Attr.Strs = map[string]string{runtime.AccumulateAttr: runtime.AccumulateStored}
			n++
		}
	}
	res, _ := runtime.RunIn(p.DType, c.Programs, c.Init)
	cand, _ := c.Trace(res)
	rep, _ := verify.Compare(ref, cand, opt)
	fmt.Println("patched", n, "verified", rep.Verified())
	for _, r := range rep.Results {
		if r.Kind == "param_grad" {
			fmt.Printf("%s %s %.3f\n", r.Name, r.Verdict, r.TolUnits)
		}
	}
	for _, b := range rep.Bias {
		if b.Name[:5] == "grad/" {
			fmt.Printf("%s ranks %v err %.4g peers %.4g (u=%.4g)\n", b.Name, b.Ranks, b.Err, b.Peers, 1.0/256)
		}
	}
}
