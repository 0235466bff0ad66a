package simtest

import (
	"testing"

	"github.com/spcheck/spcheck/pipeline"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/verify"
)

// TestCorrectRunHasNoRankBias: a correct bf16 tp=2 run over 256 tokens, whose shards are large
// enough to be compared, reports no per-rank precision bias (the shards' errors agree within
// about 1.2×, far below verify.BiasRatio).
func TestCorrectRunHasNoRankBias(t *testing.T) {
	p, err := plan.Parse("tp=2,hidden=32,heads=2,ffn=64,seq=128,batch=2,mtp=0,layers=1,dtype=bf16")
	if err != nil {
		t.Fatal(err)
	}
	rep, err := pipeline.Verify(p, nil, verify.Options{SkipHashes: true})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.Verified() || len(rep.Bias) > 0 {
		t.Fatalf("correct run: verified %v, bias %v", rep.Verified(), rep.Bias)
	}
}
