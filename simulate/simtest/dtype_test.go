package simtest

import (
	"testing"

	"github.com/spcheck/spcheck/plan"
)

// TestStorageDTypes: traces stored in fp32, bf16 and fp16 (computed in float64, rounded on
// write like the oracle's) still verify, partial sums and padded shards included.
func TestStorageDTypes(t *testing.T) {
	for _, s := range []string{
		"tp=2,pp=2,sp=megatron,microbatches=2,dtype=fp32",
		"tp=2,pp=2,dp=2,sp=vllm,batch=4,microbatches=2,mtp=2,dtype=bf16",
		"tp=3,heads=3,hidden=12,ffn=24,seq=7,partial_p2p=true,pp=2,dtype=fp16",
	} {
		p, err := plan.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := Check(p); err != nil {
			t.Error(err)
		}
	}
}
