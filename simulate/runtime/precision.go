package runtime

import (
	"math"
	"strings"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
)

// Low-precision execution. With a stored dtype other than float64, a run keeps every tensor in
// the dtype the CUDA executor (cuda/gpu/executor.cu, kernels.cu) keeps it in, and rounds where
// that executor rounds:
//
//   - Starting tensors: integer-valued inputs ("input/…": ids, labels, masks) stay exact (int32
//     on the GPU), loss weights ("weights/…") are fp32, everything else (parameters, the
//     float inputs) is rounded to the stored dtype.
//   - Local ops: a kernel reads its operands converted to the dtype it needs (the stored dtype
//     for the model's tensors; fp32 for RMSNorm's rstd, attention probabilities and the
//     cross-entropy's row statistics and weights), computes with wide accumulation (fp32 in
//     cuBLAS and the CUDA kernels; see below for how it is modelled) and
//     rounds each output once to its dtype: fp32 for the statistics above, the stored dtype
//     for the rest. add and scale compute in their first operand's dtype. Data movement
//     (narrow, concat, pad, split, reshape, copy, flat chunks) keeps its operand's dtype.
//   - Collectives run in their operand's dtype. A sum is combined NCCL-ring style: the
//     flattened tensor is cut into one chunk per member (tensor.ShardRange), and chunk j is
//     summed around the ring starting at the member after j, rounding every partial sum to the
//     dtype, so chunk j's last addend is member j's (a reduce_scatter's chunk k lands on member
//     k). max and the gathers are exact.
//   - Point-to-point sends travel in the stored dtype.
//
// Only where and how often rounding happens is modelled, not cuBLAS's or NCCL's exact bits. The
// fp32 accumulation inside the linear layers' GEMMs is modelled in an fp32 run (fp32Kernels);
// elsewhere, and for bf16/fp16 storage, accumulation is float64. A float64 run takes none of
// these paths and is bit-identical to a run without them.

// f32Outputs are the outputs that the CUDA executor keeps in fp32 whatever the stored dtype,
// by op: RMSNorm's rstd, attention's probabilities, the vocab-parallel cross-entropy's row
// statistics and the loss.
var f32Outputs = map[string][]int{
	ir.OpRMSNorm:     {1},
	ir.OpAttention:   {1},
	ir.OpVocabMax:    {0},
	ir.OpVocabSumExp: {0},
	ir.OpVocabTarget: {0},
	ir.OpCELoss:      {0},
}

// f32Operands are the operands a kernel reads as fp32 (the statistics above and the loss
// weights), intOperands those it reads as int32 (ids, labels); the model's other operands are
// read in the stored dtype.
var (
	f32Operands = map[string][]int{
		ir.OpRMSNormGrad:   {2},
		ir.OpAttentionGrad: {3},
		ir.OpVocabSumExp:   {1},
		ir.OpCELoss:        {0, 1, 2, 3},
		ir.OpCEGrad:        {1, 2, 4},
	}
	intOperands = map[string][]int{
		ir.OpEmbedding:     {0},
		ir.OpEmbeddingGrad: {0},
		ir.OpVocabTarget:   {1},
		ir.OpCEGrad:        {3},
	}
)

// movement ops copy or view values without arithmetic: their output keeps the operand's dtype.
var movement = map[string]bool{
	ir.OpCopy: true, ir.OpReshape: true, ir.OpNarrow: true, ir.OpPad: true, ir.OpConcat: true,
	ir.OpSplit: true, ir.OpFlatChunk: true,
}

// exact marks a tensor that holds integers (ids, labels) and is never rounded.
const exact = tensor.I32

// lowPrecision reports whether d is a stored dtype that rounds (fp32, bf16, fp16).
func lowPrecision(d tensor.DType) bool { return d == tensor.F32 || d == tensor.BF16 || d == tensor.F16 }

// precision is the stored dtype of a low-precision run and the dtype of each live symbol.
type precision struct {
	store tensor.DType
	of    map[string]tensor.DType
}

// InitDType is the dtype the CUDA executor loads starting tensor sym in when the run stores in
// store: integer-valued "input/" tensors exact, "weights/" fp32, the rest store.
func InitDType(sym string, t *tensor.Dense, store tensor.DType) tensor.DType {
	if strings.HasPrefix(sym, "input/") && integral(t) {
		return exact
	}
	if strings.HasPrefix(sym, "weights/") {
		return tensor.F32
	}
	return store
}

func integral(t *tensor.Dense) bool {
	for _, v := range t.Data {
		if v != float64(int32(v)) {
			return false
		}
	}
	return true
}

// load rounds a starting tensor to its dtype (a copy: the init tables are the caller's).
func (p *precision) load(sym string, t *tensor.Dense) *tensor.Dense {
	d := InitDType(sym, t, p.store)
	p.of[sym] = d
	return convert(t, tensor.F64, d)
}

// convert returns t as dtype to when it is stored as from: rounded when to is narrower, t
// itself otherwise (widening and integers are exact).
func convert(t *tensor.Dense, from, to tensor.DType) *tensor.Dense {
	if to == exact || from == to || !narrower(to, from) {
		return t
	}
	out := t.Clone()
	roundInPlace(out.Data, to)
	return out
}

// narrower reports whether float dtype a holds fewer bits of mantissa than b.
func narrower(a, b tensor.DType) bool { return mantissa(a) < mantissa(b) }

func mantissa(d tensor.DType) int {
	switch d {
	case tensor.F64:
		return 52
	case tensor.F32:
		return 23
	case tensor.F16:
		return 10
	case tensor.BF16:
		return 7
	}
	return 64 // integers: never rounded
}

// roundInPlace rounds every value of data to d, as d.Round does.
func roundInPlace(data []float64, d tensor.DType) {
	switch d {
	case tensor.F32:
		for i, v := range data {
			data[i] = float64(float32(v))
		}
	case tensor.BF16:
		for i, v := range data {
			data[i] = roundNormal(v, bf16Normal, d)
		}
	case tensor.F16:
		for i, v := range data {
			data[i] = roundNormal(v, fp16Normal, d)
		}
	default:
		for i, v := range data {
			data[i] = d.Round(v)
		}
	}
}

// normalRange is a narrow float format's normal binary exponents [emin, emax] and its dropped
// float64 mantissa bits.
type normalRange struct{ emin, emax, drop int }

var (
	bf16Normal = normalRange{emin: -126, emax: 127, drop: 52 - 7}
	fp16Normal = normalRange{emin: -14, emax: 15, drop: 52 - 10}
)

// roundNormal rounds x to nearest-even on its float64 bits when x is a normal number of the
// narrow format (the common case, several times faster than tensor's general rounding) and
// leaves zeros, subnormals, overflow and non-finite values to d.Round. A carry out of the
// largest binade is handed to d.Round too, which returns the infinity.
func roundNormal(x float64, f normalRange, d tensor.DType) float64 {
	b := math.Float64bits(x)
	e := int(b>>52&0x7ff) - 1023
	if e < f.emin || e >= f.emax {
		return d.Round(x)
	}
	drop := uint(f.drop)
	b += (1<<(drop-1) - 1) + (b>>drop)&1
	b &^= 1<<drop - 1
	return math.Float64frombits(b)
}

// operands converts op's operands to the dtypes its kernel reads them in.
func (p *precision) operands(op *ir.Op, in []*tensor.Dense) []*tensor.Dense {
	if movement[op.Op] {
		return in
	}
	out := make([]*tensor.Dense, len(in))
	for k, t := range in {
		out[k] = convert(t, p.of[op.In[k]], p.operandDType(op, k))
	}
	return out
}

// operandDType is the dtype op's kernel reads operand k in.
func (p *precision) operandDType(op *ir.Op, k int) tensor.DType {
	switch op.Op {
	case ir.OpAdd, ir.OpScale:
		return p.work(op)
	}
	switch {
	case contains(f32Operands[op.Op], k):
		return tensor.F32
	case contains(intOperands[op.Op], k):
		return exact
	}
	return p.store
}

// work is the dtype add and scale compute in: their first operand's float dtype (the stored
// dtype when that operand is an integer tensor).
func (p *precision) work(op *ir.Op) tensor.DType {
	if d := p.of[op.In[0]]; d != exact && d != 0 {
		return d
	}
	return p.store
}

// outputs rounds a local op's outputs (fresh tensors for every non-movement kernel) to their
// dtypes and records them.
func (p *precision) outputs(op *ir.Op, out []*tensor.Dense) {
	for k, t := range out {
		d := p.outDType(op, k)
		if !movement[op.Op] && d != exact {
			roundInPlace(t.Data, d)
		}
		p.of[op.Out[k]] = d
	}
}

func (p *precision) outDType(op *ir.Op, k int) tensor.DType {
	switch {
	case op.Op == ir.OpZeros:
		return p.store
	case movement[op.Op]:
		return p.of[op.In[0]]
	case op.Op == ir.OpAdd || op.Op == ir.OpScale:
		return p.work(op)
	case contains(f32Outputs[op.Op], k):
		return tensor.F32
	}
	return p.store
}

// send is a tensor as it travels point-to-point: float tensors in the stored dtype.
func (p *precision) send(sym string, t *tensor.Dense) (*tensor.Dense, tensor.DType) {
	d := p.of[sym]
	if d == exact {
		return t, exact
	}
	return convert(t, d, p.store), p.store
}

func contains(xs []int, k int) bool {
	for _, x := range xs {
		if x == k {
			return true
		}
	}
	return false
}

// ringSum sums the members' tensors in dtype d as NCCL's ring does (see the package comment on
// low-precision execution): chunk j of the flattened tensor is accumulated from member j+1
// around the ring to member j, every partial sum rounded to d.
func ringSum(in []*tensor.Dense, d tensor.DType) *tensor.Dense {
	n := len(in)
	out := tensor.New(in[0].Shape...)
	numel := out.Numel()
	for j := 0; j < n; j++ {
		lo, hi := tensor.ShardRange(numel, n, j)
		acc := out.Data[lo:hi]
		copy(acc, in[(j+1)%n].Data[lo:hi])
		for s := 2; s <= n; s++ {
			x := in[(j+s)%n].Data[lo:hi]
			for i := range acc {
				acc[i] += x[i]
			}
			roundInPlace(acc, d)
		}
	}
	return out
}

// A linear_grad_weight op whose string attribute AccumulateAttr is AccumulateStored accumulates
// its GEMM in the stored dtype, every partial sum rounded, as a kernel does that keeps its
// accumulator in bf16 instead of fp32: the precision bug verify's per-rank bias finds (its error
// grows with the reduced length instead of staying at one rounding). In a float64 run the
// attribute changes nothing.
const (
	AccumulateAttr   = "accumulate"
	AccumulateStored = "stored"
)

// linearGradWeightStored is dW = dyᵀ·x [out, in] summed over the tokens in order, rounding the
// running sums to d after every token.
func linearGradWeightStored(x, dy *tensor.Dense, d tensor.DType) *tensor.Dense {
	in, out := x.Shape[x.Rank()-1], dy.Shape[dy.Rank()-1]
	n := x.Numel() / max(in, 1)
	dw := tensor.New(out, in)
	for t := 0; t < n; t++ {
		xt, dyt := x.Data[t*in:(t+1)*in], dy.Data[t*out:(t+1)*out]
		for o, g := range dyt {
			row := dw.Data[o*in : (o+1)*in]
			for i, v := range xt {
				row[i] += g * v
			}
			roundInPlace(row, d)
		}
	}
	return dw
}

// In an fp32 run the linear layers' GEMMs accumulate in fp32 (gonum's Sgemm on the operands,
// which already hold fp32 values): cuBLAS with CUBLAS_COMPUTE_32F, whose accumulation error
// grows with the reduced length and is, for fp32 storage, as large as the output's own
// rounding or larger. (For bf16 and fp16 storage the same error is far below one rounding of
// the output, so float64 accumulation models it.) The attention and norm kernels' fp32 loops
// are not modelled: they accumulate in float64.
var fp32Kernels = map[string]Kernel{
	ir.OpLinear: func(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
		y, err := kLinear(in, a) // shapes and the output tensor
		if err != nil {
			return nil, err
		}
		x, w := in[0], in[1]
		k, n := w.Shape[1], w.Shape[0]
		sgemm(false, true, x.Numel()/max(k, 1), n, k, x.Data, w.Data, y[0].Data)
		return y, nil
	},
	ir.OpLinearGradInput: func(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
		dx, err := kLinearGradInput(in, a)
		if err != nil {
			return nil, err
		}
		dy, w := in[0], in[1]
		out, inDim := w.Shape[0], w.Shape[1]
		sgemm(false, false, dy.Numel()/max(out, 1), inDim, out, dy.Data, w.Data, dx[0].Data)
		return dx, nil
	},
	ir.OpLinearGradWeight: func(in []*tensor.Dense, a ir.Attrs) ([]*tensor.Dense, error) {
		dw, err := kLinearGradWeight(in, a)
		if err != nil {
			return nil, err
		}
		dy, x := in[0], in[1]
		out, inDim := dw[0].Shape[0], dw[0].Shape[1]
		sgemm(true, false, out, inDim, x.Numel()/max(inDim, 1), dy.Data, x.Data, dw[0].Data)
		return dw, nil
	},
}

var blas32 gonum.Implementation

// sgemm overwrites c (m×n, row-major) with op(a)·op(b) computed in float32, op(a) m×k and op(b)
// k×n stored row-major without padding.
func sgemm(tA, tB bool, m, n, k int, a, b, c []float64) {
	if m == 0 || n == 0 {
		return
	}
	a32, b32, c32 := to32(a), to32(b), make([]float32, m*n)
	if k > 0 {
		lda, ldb := k, n
		if tA {
			lda = m
		}
		if tB {
			ldb = k
		}
		blas32.Sgemm(trans(tA), trans(tB), m, n, k, 1, a32, lda, b32, ldb, 0, c32, n)
	}
	for i, v := range c32 {
		c[i] = float64(v)
	}
}

func trans(t bool) blas.Transpose {
	if t {
		return blas.Trans
	}
	return blas.NoTrans
}

func to32(x []float64) []float32 {
	out := make([]float32, len(x))
	for i, v := range x {
		out[i] = float32(v)
	}
	return out
}
