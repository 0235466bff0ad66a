package gputraces

import (
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/verify"
)

// RoundedOpsPerLayer is how many ops of one transformer layer round their output to the stored
// dtype in each direction on the GPU (RMSNorm, q, k, v, RoPE, attention, o, residual add,
// RMSNorm, gate, up, SwiGLU, down, residual add: 14 in the forward, about as many in the
// backward), counted from simulate/builder.go's layer.
const RoundedOpsPerLayer = 14

// ChainDepth is the length of the longest chain of rounded ops in a forward and backward pass of
// model m on hardware: the embedding and head ops plus RoundedOpsPerLayer for every main and MTP
// layer, both directions.
func ChainDepth(m plan.Model) int { return 2 * ((m.Layers+m.MTP)*RoundedOpsPerLayer + 4) }

// VerifyOptions are the comparison options for a hardware run of p against the oracle.
// verify's default tolerances cover about one rounding in the stored dtype (torch's rtols); a
// GPU run rounds after every op of its forward and backward chain, and independent roundings
// grow as √n (Higham & Mary, SIAM J. Sci. Comput. 41(5), 2019: the same model verify applies to
// a sum of n terms). So every tensor is compared with the default tolerance of its dtype
// scaled by √ChainDepth — for the default model (2 layers, 1 MTP depth) √92 ≈ 9.6, i.e. about
// 1.2e-5 in fp32 and 0.15 in bf16. The bugs the GPU scenarios seed lose, duplicate or misplace
// whole slices: relative errors of order 1, far outside either.
func VerifyOptions(p plan.Plan) verify.Options {
	d := ChainDepth(p.Model)
	return verify.Options{Depth: func(string) int { return d }}
}
