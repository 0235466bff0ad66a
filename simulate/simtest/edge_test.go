package simtest

import (
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/plan"
)

// TestEdgePlans: the corners of the layout, each on its own.
func TestEdgePlans(t *testing.T) {
	for _, c := range scenario.Cases(t, []struct{ plan, reason string }{
		{"tp=4,heads=4,hidden=8,ffn=8,vocab=3", "TP ranks with no real vocab row: their logits are all padding"},
		{"tp=4,heads=4,hidden=8,ffn=8,seq=1,sp=megatron,mtp=2", "one token under SP: three of four TP ranks hold only sequence padding"},
		{"tp=4,heads=4,hidden=8,ffn=8,seq=2,sp=vllm,pp=2,mtp=1", "vLLM SP with padded rows crossing a pipeline boundary"},
		{"pp=4,layers=4,microbatches=4,batch=4,schedule=1f1b,tied=true,mtp=0", "1F1B with as many micro-batches as stages, tied head on the last stage"},
		{"pp=3,layers=3,microbatches=1,schedule=1f1b", "1F1B with fewer micro-batches than stages"},
		{"pp=2,partial_p2p=true,hidden=6,heads=3,ffn=6,seq=3,batch=1", "partial P2P asked for with tp=1: nothing to split, full sends"},
		{"tp=4,heads=4,hidden=8,ffn=8,seq=3,batch=1,pp=2,partial_p2p=true,schedule=gpipe,microbatches=1", "partial P2P over 4 TP ranks (24 elements, 6 per chunk)"},
		{"dp=2,microbatches=2,batch=4,mtp=2,mtp_lambda=0", "MTP with λ = 0: the depths' grads are zero"},
		{"tp=3,mtp=0,hidden=12,heads=3,layers=1,ffn=3,vocab=9,seq=6,batch=1,dtype=fp16,seed=1639859169",
			"fp16 partial sums over 3 TP ranks whose summands cancel (verify scales their tolerance with the summands)"},
		{"tp=3,hidden=24,heads=3,layers=3,ffn=6,vocab=27,seq=9,batch=8,dtype=bf16,seed=773352309",
			"the same in bf16, in an MTP layer's MLP output"},
		{"tp=2,pp=2,dp=2,sp=vllm,packed=2:3,hidden=8,heads=2,layers=3,ffn=16,vocab=17,seq=5,batch=2,seed=20250",
			"a packed sequence starting with a repeated token: dL/dq is exactly zero, only rounding noise on both sides (verify.KindFloorFraction)"},
	}) {
		p, err := plan.Parse(c.plan)
		if err != nil {
			t.Fatalf("%s: %v", c.reason, err)
		}
		if err := Check(p); err != nil {
			t.Errorf("%s: %v", c.reason, err)
		}
	}
}
