package bugs

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/serving"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/simulate/ir"
	simrt "github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// Example is a worked example of an upstream bug: numbers worked out by hand from the upstream
// code (and, for PaddleFleet#589, the PR discussion's table), recomputed by spcheck — tiny
// hand-written programs run through the simulator's runtime with the catalogue's own rewrites,
// compared by the verifier; or package serving's loop on the example's deployment.
type Example struct {
	Name   string
	Source string // the upstream report the numbers are worked out from
	Title  string
	Bugs   []string // the catalogue entries it illustrates
	run    func() (*ExampleResult, error)
}

// Fact is one number (or list) as spcheck computed it, next to the hand-worked expected value.
type Fact struct {
	What string
	Got  string
	Want string
}

// OK reports whether spcheck's value is the expected one.
func (f Fact) OK() bool { return f.Got == f.Want }

// ExampleResult is a worked example's outcome.
type ExampleResult struct {
	Example *Example
	Facts   []Fact
	// Report compares the correct run (reference) with the buggy one, for the examples that
	// run programs; Seed001 asks for PaddleFleet#589's layout under its block table.
	Report  *verify.Report
	Seed001 bool
	// The serving examples' evidence, as tables (package reports renders them): the emission
	// gate under each deployment, and the decode loop whose launches were under-predicted.
	Gates    *serving.GateTable
	Launches *serving.Report
}

// OK reports whether every fact matches its expected value.
func (r *ExampleResult) OK() bool {
	for _, f := range r.Facts {
		if !f.OK() {
			return false
		}
	}
	return len(r.Facts) > 0
}

func (r *ExampleResult) fact(what, got, want string) {
	r.Facts = append(r.Facts, Fact{what, got, want})
}

// Examples lists the worked examples, training before serving before MTP.
func Examples() []*Example {
	return []*Example{
		{Name: "seed001-develop", Source: "PaddleFleet#589", Title: "partial send/recv under SP, develop branch (NormPipe backward ×2 before the boundary)",
			Bugs: []string{"partial-p2p-under-sp"}, run: func() (*ExampleResult, error) { return seed001("seed001-develop", 2) }},
		{Name: "seed001-unify", Source: "PaddleFleet#589", Title: "partial send/recv under SP, unify branch (identity EmptyLayer before the boundary)",
			Bugs: []string{"partial-p2p-under-sp"}, run: func() (*ExampleResult, error) { return seed001("seed001-unify", 1) }},
		{Name: "norm-grad", Source: "Megatron-LM finalize_model_grads.py", Title: "SP norm-weight grads: 4 tokens, tp=2, per-token contributions 1,2,3,4",
			Bugs: []string{"sp-norm-grad-not-reduced", "sp-norm-grad-avg"}, run: normGrad},
		{Name: "vllm33322", Source: "vLLM #33322", Title: "vLLM MiddleAllReduceRMSNorm residual slice, tp=2, N=4 (3 tokens + 1 pad), H=2",
			Bugs: []string{"vllm-residual-slice-offset0"}, run: vllm33322},
		{Name: "vllm24021", Source: "vLLM #24021", Title: "vLLM PP+SP residual sent by slice + all-gather (pre-#24021), tp=2",
			Bugs: []string{"vllm-residual-send-allgather"}, run: vllm24021},
		{Name: "gate-table", Source: "FastDeploy #7172", Title: "FastDeploy emission gates, TP=2 × DP=2 (EP)",
			Bugs: []string{"serving.gate-old", "serving.gate-global-rank"}, run: gateTable},
		{Name: "launch-prediction", Source: "FastDeploy #7172", Title: "FastDeploy next-launch token count, k=3",
			Bugs: []string{"serving.predict-current-step"}, run: launchPrediction},
		{Name: "cu-seqlens", Source: "ms-swift #6496", Title: "MTP cu_seqlens for packed lengths 4,3,5 (depth 1)",
			Bugs: []string{"mtp-cu-seqlens-shifted", "mtp-cu-seqlens-compacted"}, run: cuSeqlens},
		{Name: "recompute-positions", Source: "ms-swift #6496", Title: "RoPE positions of the forward vs the recompute, packed lengths 2,3,5 (ms-swift's rolled table, then spcheck's per-sequence positions read from the compiled programs)",
			Bugs: []string{"recompute-config-toggled"}, run: recomputePositions},
		{Name: "eh-proj", Source: "Megatron-LM 06e9f28b30", Title: "MTP eh_proj gather adjoint, tp=2, H=4, G=[1,2,3,4]",
			Bugs: []string{"mtp-eh-proj-reduce-scatter"}, run: ehProj},
	}
}

// LookupExample returns the worked example called name.
func LookupExample(name string) (*Example, bool) {
	for _, e := range Examples() {
		if e.Name == name {
			return e, true
		}
	}
	return nil, false
}

// Run runs the example.
func (e *Example) Run() (*ExampleResult, error) {
	r, err := e.run()
	if err != nil {
		return nil, fmt.Errorf("example %s: %w", e.Name, err)
	}
	r.Example = e
	return r, nil
}

// list prints values as the hand-worked examples do, rounded to 4 decimals: [1.3814 -0.303].
func list(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = strconv.FormatFloat(math.Round(x*1e4)/1e4+0, 'g', -1, 64)
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// rows prints a [n, m] tensor as [[a b] [c d]].
func rows(t *tensor.Dense) string {
	if t == nil {
		return "(missing)"
	}
	m := t.Shape[len(t.Shape)-1]
	parts := make([]string, 0, t.Numel()/m)
	for i := 0; i < t.Numel(); i += m {
		parts = append(parts, list(t.Data[i:i+m]))
	}
	return "[" + strings.Join(parts, " ") + "]"
}

// twoRuns runs the programs build makes as written and with rewrite, and compares the buggy
// run's trace with the correct one's (the reference); example names the worked example.
func twoRuns(build func() *mini, rewrite func(c *simulate.Compiled) error, example string) (ok, bad *simrt.Result, rep *verify.Report, err error) {
	ok, okTr, err := build().run(nil)
	if err != nil {
		return nil, nil, nil, err
	}
	bad, badTr, err := build().run(rewrite)
	if err != nil {
		return nil, nil, nil, err
	}
	rep, err = verify.Compare(okTr, badTr, verify.Options{Command: "spcheck repro " + example})
	return ok, bad, rep, err
}

// ---- PaddleFleet#589: partial send/recv under SP ----

// seed001 is PaddleFleet#589's table: the last stage's TP ranks hold the LMHead backward output
// (8 elements each), pass it through the layer before the boundary (×c) and send it back to the
// previous stage, whose receivers trace what arrives.
func seed001(name string, c float64) (*ExampleResult, error) {
	lm := [2][]float64{{10, 20, 30, 40, 50, 60, 70, 80}, {90, 100, 110, 120, 130, 140, 150, 160}}
	build := func() *mini {
		m := newMini(2, 2, "tp=2,pp=2,sp=megatron,partial_p2p=true,mtp=0")
		for t := 0; t < 2; t++ {
			send, recv := 2+t, t
			m.input(send, "lm_head_grad", []int{8}, lm[t]...)
			m.op(send, ir.Op{Op: ir.OpScale, In: []string{"lm_head_grad"}, Out: []string{"boundary_grad"},
				Attr: ir.Attrs{Floats: map[string]float64{"c": c}}})
			m.op(send, ir.Op{Op: ir.OpP2P, Role: simulate.RoleSendBackward,
				P2P: []ir.Transfer{{Send: true, Peer: recv, Sym: "boundary_grad", Shape: []int{8}}}})
			m.op(recv, ir.Op{Op: ir.OpP2P, Role: simulate.RoleRecvBackward,
				P2P: []ir.Transfer{{Peer: send, Sym: "received", Shape: []int{8}}}})
		}
		m.trace([]int{2, 3}, "boundary_grad", "agrad/pp_boundary.sent", string(trace.ActivationGrad), "pp=stage,tp=shard(0)", 16)
		m.trace([]int{0, 1}, "received", "agrad/pp_boundary", string(trace.ActivationGrad), "pp=stage,tp=shard(0)", 16)
		return m
	}
	okRes, badRes, rep, err := twoRuns(build, partialP2P(true, true), name)
	if err != nil {
		return nil, err
	}
	out := &ExampleResult{Report: rep, Seed001: true}
	scaled := func(v []float64) string {
		w := make([]float64, len(v))
		for i, x := range v {
			w[i] = c * x
		}
		return list(w)
	}
	got := [2]string{list(tensorOf(badRes, 0, "agrad/pp_boundary").Data), list(tensorOf(badRes, 1, "agrad/pp_boundary").Data)}
	want := scaled(append(slices.Clone(lm[0][:4]), lm[1][4:]...))
	for t := 0; t < 2; t++ {
		out.fact(fmt.Sprintf("receiver TP%d after all_gather_partial", t), got[t], want)
	}
	lost := lostValues(rep)
	out.fact("lost TP0", strings.Join(lost[0], " "), scaled(lm[0][4:]))
	out.fact("lost TP1", strings.Join(lost[1], " "), scaled(lm[1][:4]))
	for t := 0; t < 2; t++ {
		out.fact(fmt.Sprintf("correct TP%d (its own sender's tensor)", t), list(tensorOf(okRes, t, "agrad/pp_boundary").Data), scaled(lm[t]))
	}
	return out, nil
}

// lostValues maps each lost reference block's rank to its values.
func lostValues(rep *verify.Report) map[int][]string {
	out := map[int][]string{}
	if first := rep.First(); len(first) > 0 && first[0].Diagnosis != nil {
		for _, l := range first[0].Diagnosis.Lost {
			out[l.Rank] = append(out[l.Rank], list(append(slices.Clone(l.Values.Head), l.Values.Tail...)))
		}
	}
	return out
}

// ---- SP norm-weight gradients (Megatron-LM finalize_model_grads.py) ----

// normGrad: each TP rank's partial gradient of a replicated weight is Σ over its own tokens of
// the per-token contributions (linear_grad_weight of ones), then the SP SUM all-reduce.
func normGrad() (*ExampleResult, error) {
	contrib := [2][]float64{{1, 2}, {3, 4}}
	build := func() *mini {
		m := newMini(1, 2, "tp=2,sp=megatron,mtp=0")
		for t := 0; t < 2; t++ {
			m.input(t, "dy", []int{2, 1}, contrib[t]...)
			m.input(t, "x", []int{2, 1}, 1, 1)
			m.op(t, ir.Op{Op: ir.OpLinearGradWeight, In: []string{"dy", "x"}, Out: []string{"partial"}},
				ir.Op{Op: ir.OpAllReduce, In: []string{"partial"}, Out: []string{"grad"}, Group: m.tp(t), Role: simulate.RoleGradTPSum,
					Attr: ir.Attrs{Strs: map[string]string{"reduce": ir.ReduceSum}}})
		}
		m.trace([]int{0, 1}, "grad", "grad/norm.weight", string(trace.ParamGrad), "", 1, 1)
		return m
	}
	out := &ExampleResult{}
	ok, dropped, rep, err := twoRuns(build, allReduceDropped(simulate.RoleGradTPSum), "norm-grad")
	if err != nil {
		return nil, err
	}
	_, avg, _, err := twoRuns(build, allReduceAveraged(simulate.RoleGradTPSum), "norm-grad")
	if err != nil {
		return nil, err
	}
	out.Report = rep
	for t := 0; t < 2; t++ {
		out.fact(fmt.Sprintf("correct, rank %d", t), list(tensorOf(ok, t, "grad/norm.weight").Data), "[10]")
	}
	out.fact("missing all-reduce, rank 0", list(tensorOf(dropped, 0, "grad/norm.weight").Data), "[3]")
	out.fact("missing all-reduce, rank 1", list(tensorOf(dropped, 1, "grad/norm.weight").Data), "[7]")
	verdict := ""
	if first := rep.First(); len(first) > 0 {
		verdict = string(first[0].Verdict)
	}
	out.fact("missing all-reduce, verdict", verdict, string(verify.ReplicaMismatch))
	out.fact("AVG instead of SUM, every rank", list(tensorOf(avg, 0, "grad/norm.weight").Data)+" "+list(tensorOf(avg, 1, "grad/norm.weight").Data), "[5] [5]")
	return out, nil
}

// ---- vLLM #33322: the residual slice ----

// vllm33322 is the SP replacement of all_reduce + fused_add_rms_norm: reduce-scatter the
// row-parallel partials, add this rank's rows of the full residual, norm, all-gather.
func vllm33322() (*ExampleResult, error) {
	x := [2][]float64{{1, 2, 3, 4, 5, 6, 0, 0}, {10, 20, 30, 40, 50, 60, 0, 0}}
	resid := []float64{100, -100, 200, -50, 300, 0, 0, 0}
	build := func() *mini {
		m := newMini(1, 2, "tp=2,sp=vllm,mtp=0")
		for t := 0; t < 2; t++ {
			m.input(t, "x", []int{4, 2}, x[t]...)
			m.input(t, "residual", []int{4, 2}, resid...)
			m.input(t, "w", []int{2}, 1, 1)
			m.op(t,
				ir.Op{Op: ir.OpReduceScatter, In: []string{"x"}, Out: []string{"rs"}, Attr: ir.Ints("dim", 0), Group: m.tp(t), Role: simulate.RoleRowReduce},
				ir.Op{Op: ir.OpNarrow, In: []string{"residual"}, Out: []string{"resid_local"}, Attr: ir.Ints("dim", 0, "start", 2*t, "len", 2), Role: simulate.RoleResidualSlice},
				ir.Op{Op: ir.OpAdd, In: []string{"rs", "resid_local"}, Out: []string{"residual_out"}},
				ir.Op{Op: ir.OpRMSNorm, In: []string{"residual_out", "w"}, Out: []string{"y_local", "rstd"}},
				ir.Op{Op: ir.OpAllGather, In: []string{"y_local"}, Out: []string{"y"}, Attr: ir.Ints("dim", 0), Group: m.tp(t), Role: simulate.RoleSeqGather})
		}
		m.trace([]int{0, 1}, "residual_out", "act/residual_out", string(trace.Activation), "tp=shard(0)", 4, 2)
		m.trace([]int{0, 1}, "y", "act/y", string(trace.Activation), "", 4, 2)
		return m
	}
	ok, bad, rep, err := twoRuns(build, residualSliceAtZero, "vllm33322")
	if err != nil {
		return nil, err
	}
	out := &ExampleResult{Report: rep}
	out.fact("correct rank0 residual_out (local)", rows(tensorOf(ok, 0, "act/residual_out")), "[[111 -78] [233 -6]]")
	out.fact("correct rank1 residual_out (local)", rows(tensorOf(ok, 1, "act/residual_out")), "[[355 66] [0 0]]")
	out.fact("correct all_gather(y) on every rank", rows(tensorOf(ok, 1, "act/y")), "[[1.1571 -0.8131] [1.4137 -0.0364] [1.3904 0.2585] [0 0]]")
	out.fact("buggy rank0 residual_out (local)", rows(tensorOf(bad, 0, "act/residual_out")), "[[111 -78] [233 -6]]")
	out.fact("buggy rank1 residual_out (local)", rows(tensorOf(bad, 1, "act/residual_out")), "[[155 -34] [200 -50]]")
	out.fact("buggy all_gather(y) on every rank", rows(tensorOf(bad, 0, "act/y")), "[[1.1571 -0.8131] [1.4137 -0.0364] [1.3814 -0.303] [1.372 -0.343]]")
	first, sig := "", Signature("")
	if f := rep.First(); len(f) > 0 && f[0].Signature != nil {
		first, sig = f[0].Name, Signature(f[0].Signature.Kind)
	}
	out.fact("first divergence", first+" ("+string(sig)+")", "act/residual_out ("+string(SigTP0Right)+")")
	return out, nil
}

// ---- vLLM #24021: the PP+SP residual transport ----

// vllm24021 sends stage k's scattered residual shards to stage k+1 (send_tensor_dict), then the
// receivers all-gather them (post-#33322 sync_and_gather_intermediate_tensors).
func vllm24021() (*ExampleResult, error) {
	shard := [2][]float64{{111, -78, 233, -6}, {355, 66, 0, 0}}
	build := func() *mini {
		m := newMini(2, 2, "tp=2,pp=2,sp=vllm,partial_p2p=true,mtp=0")
		for t := 0; t < 2; t++ {
			send, recv := t, 2+t
			m.input(send, "residual", []int{2, 2}, shard[t]...)
			m.op(send, ir.Op{Op: ir.OpP2P, Role: simulate.RoleSendForward,
				P2P: []ir.Transfer{{Send: true, Peer: recv, Sym: "residual", Shape: []int{2, 2}}}})
			m.op(recv, ir.Op{Op: ir.OpP2P, Role: simulate.RoleRecvForward,
				P2P: []ir.Transfer{{Peer: send, Sym: "received", Shape: []int{2, 2}}}},
				ir.Op{Op: ir.OpAllGather, In: []string{"received"}, Out: []string{"gathered"}, Attr: ir.Ints("dim", 0), Group: m.tp(recv), Role: simulate.RoleResidualGather})
		}
		m.trace([]int{2, 3}, "received", "act/residual.received", string(trace.Activation), "pp=stage,tp=shard(0)", 4, 2)
		m.trace([]int{2, 3}, "gathered", "act/residual.gathered", string(trace.Activation), "pp=stage", 4, 2)
		return m
	}
	ok, bad, rep, err := twoRuns(build, partialP2P(true, false), "vllm24021")
	if err != nil {
		return nil, err
	}
	out := &ExampleResult{Report: rep}
	out.fact("post-#24021: every rank of stage k+1 after the gather", rows(tensorOf(ok, 3, "act/residual.gathered")), "[[111 -78] [233 -6] [355 66] [0 0]]")
	out.fact("pre-#24021: receiver TP0", rows(tensorOf(bad, 2, "act/residual.received")), "[[111 -78] [0 0]]")
	out.fact("pre-#24021: receiver TP1", rows(tensorOf(bad, 3, "act/residual.received")), "[[111 -78] [0 0]]")
	lost := lostValues(rep)
	out.fact("lost (rank 2 = TP0's peer)", strings.Join(lost[2], " "), "[233 -6]")
	out.fact("lost (rank 3 = TP1's peer)", strings.Join(lost[3], " "), "[355 66]")
	return out, nil
}

// ---- FastDeploy #7172: emission gate and launch prediction ----

func gateTable() (*ExampleResult, error) {
	t, err := serving.CompareGates(serving.GateExample())
	if err != nil {
		return nil, err
	}
	out := &ExampleResult{Gates: &t}
	want := [][4]string{
		{"old, use_ep=False (pure TP, DP=1)", "r0", "A,B | -", "ok"},
		{"old, use_ep=True", "r0,r1,r2,r3", "A,B,A,B | C,D,C,D", "duplicates x2"},
		{"new (rank_id = tp_rank)", "r0,r2", "A,B | C,D", "ok"},
		{"hypothetical (rank_id = global rank)", "r0", "A,B | (nothing)", "C,D lost"},
	}
	for i, row := range t.Rows {
		emitters := make([]string, len(row.Emitters))
		for j, r := range row.Emitters {
			emitters[j] = fmt.Sprintf("r%d", r)
		}
		got := strings.Join(emitters, ",") + "; " + strings.Join(row.Queues, " | ") + "; " + row.Verdict
		w := "(no such row)"
		if i < len(want) {
			w = want[i][1] + "; " + want[i][2] + "; " + want[i][3]
		}
		out.fact(row.Label, got, w)
	}
	return out, nil
}

func launchPrediction() (*ExampleResult, error) {
	slt, blk := []int{4, 4, 2, 0}, []int{0, 0, 0, 1}
	out := &ExampleResult{}
	out.fact("old: sum(slt)+sum(blk)*4", strconv.Itoa(serving.PredictCurrentStep.PredictNextLaunch(3, slt, blk)), "14")
	out.fact("new: next_real_bsz*4", strconv.Itoa(serving.PredictNextRealBsz.PredictNextLaunch(3, slt, blk)), "16")
	cfg := serving.PredictionExample()
	cfg.Predict = serving.PredictCurrentStep
	rep, err := serving.Run(cfg)
	if err != nil {
		return nil, err
	}
	got := "(none)"
	for _, l := range rep.UnderPredicted() {
		got = fmt.Sprintf("step %d DP%d: predicted %d, actual %d", l.Step, l.DP, l.Predicted, l.Actual)
		break
	}
	out.fact("in the decode loop, first under-prediction", got, "step 2 DP0: predicted 14, actual 16")
	out.Launches = &rep
	return out, nil
}

// ---- ms-swift #6496: MTP cu_seqlens and the recompute's RoPE positions ----

func cuSeqlens() (*ExampleResult, error) {
	cu := []int{0, 4, 7, 12}
	out := &ExampleResult{}
	out.fact("author: concat([0], cu[1:]-1, cu[-1:])", fmt.Sprint(AuthorCuSeqlens(cu)), "[0 3 6 11 12]")
	out.fact("reviewer: cu - arange(len(cu))", fmt.Sprint(ReviewerCuSeqlens(cu)), "[0 3 5 9]")
	for _, name := range []string{"mtp-cu-seqlens-shifted", "mtp-cu-seqlens-compacted"} {
		b, err := Lookup(name)
		if err != nil {
			return nil, err
		}
		o, err := Run(b, b.MinimalPlan())
		if err != nil {
			return nil, err
		}
		out.fact(name+": mismatching valid positions (depth 1)", fmt.Sprint(o.Positions), "[4 7 8 9]")
	}
	return out, nil
}

// recomputePositions reads the RoPE positions of the MTP layer's forward and of its recompute
// from the compiled programs of recompute-config-toggled's plan.
func recomputePositions() (*ExampleResult, error) {
	b, err := Lookup("recompute-config-toggled")
	if err != nil {
		return nil, err
	}
	p := b.MinimalPlan()
	c, err := simulate.Compile(p, b.Variant())
	if err != nil {
		return nil, err
	}
	prog := c.Programs[len(c.Programs)-1]
	var fwd, re []int
	for _, o := range prog.Ops {
		if o.Op != ir.OpRoPE || o.Role != simulate.RoleMTPRoPE {
			continue
		}
		if strings.HasSuffix(o.Out[0], ir.RecomputeSuffix) {
			re = o.Attr.IntList("pos")
		} else {
			fwd = o.Attr.IntList("pos")
		}
	}
	cu := p.CuSeqlens()
	seqC := func(pos []int) string {
		if len(pos) < cu[3] {
			return "(none)"
		}
		return fmt.Sprint(pos[cu[2]:cu[3]])
	}
	out := &ExampleResult{}
	// ms-swift rolls the positions with the ids; the same kernel mapping on its rolled table
	// gives the hand-worked numbers.
	rolled := []int{1, 0, 1, 2, 0, 1, 2, 3, 4, 0}
	out.fact("ms-swift's rolled table: forward positions of sequence C", seqC(rolled), "[1 2 3 4 0]")
	out.fact("ms-swift's rolled table: the fused recompute reads freqs[0..4]", seqC(FusedPositions(rolled, cu)), "[1 0 1 2 0]")
	out.fact("forward RoPE positions of sequence C", seqC(fwd), "[0 1 2 3 4]")
	out.fact("recompute (fused kernel: freqs by in-sequence offset) of sequence C", seqC(re), "[0 1 0 1 2]")
	var same []int
	for j := cu[2]; j < cu[3] && j < len(fwd) && j < len(re); j++ {
		if fwd[j] == re[j] {
			same = append(same, j-cu[2])
		}
	}
	out.fact("offsets of sequence C where they coincide (< length of the first sequence)", fmt.Sprint(same), fmt.Sprint(nn.Positions(1, cu)[:cu[1]]))
	return out, nil
}

// ---- Megatron-LM 06e9f28b30: the eh_proj gather's adjoint ----

// ehProj: the eh_proj output's TP shards are gathered on the last dim; its incoming gradient G is
// the same on every rank, and the gather's adjoint gives each rank its slice.
func ehProj() (*ExampleResult, error) {
	build := func() *mini {
		m := newMini(1, 2, "tp=2,mtp=1")
		for t := 0; t < 2; t++ {
			m.input(t, "z_local", []int{1, 2}, float64(2*t+1), float64(2*t+2))
			m.input(t, "G", []int{1, 4}, 1, 2, 3, 4)
			m.op(t, ir.Op{Op: ir.OpAllGather, In: []string{"z_local"}, Out: []string{"z"}, Attr: ir.Ints("dim", 1), Group: m.tp(t), Role: simulate.RoleEHProjGather},
				ir.Op{Op: ir.OpNarrow, In: []string{"G"}, Out: []string{"dz_local"}, Attr: ir.Ints("dim", 1, "start", 2*t, "len", 2), Role: simulate.RoleEHProjGather + ".bwd"})
		}
		m.trace([]int{0, 1}, "z", "act/mtp.1.eh_proj", string(trace.Activation), "", 1, 4)
		m.trace([]int{0, 1}, "dz_local", "agrad/mtp.1.eh_proj.local", string(trace.ActivationGrad), "tp=shard(1)", 1, 4)
		return m
	}
	ok, bad, rep, err := twoRuns(build, ehProjReduceScatter, "eh-proj")
	if err != nil {
		return nil, err
	}
	out := &ExampleResult{Report: rep}
	key := "agrad/mtp.1.eh_proj.local"
	out.fact("correct (split)", list(tensorOf(ok, 0, key).Data)+" "+list(tensorOf(ok, 1, key).Data), "[1 2] [3 4]")
	out.fact("buggy (reduce-scatter)", list(tensorOf(bad, 0, key).Data)+" "+list(tensorOf(bad, 1, key).Data), "[2 4] [6 8]")
	scale := ""
	if f := rep.First(); len(f) > 0 && f[0].Signature != nil && f[0].Signature.Kind == verify.SigScaled {
		scale = verify.FormatScale(f[0].Signature.Scale, f[0].Signature.ScaleName)
	}
	out.fact("diagnosis", scale, "×2 (tp)")
	return out, nil
}
