package torchdist

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/internal/testenv"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
)

// The Llama examples (python/examples/llama): the unmodified Hugging Face LlamaForCausalLM,
// tiny and random, float64, on PyTorch 2.x from PyPI. The single-process reference, then on 2
// gloo processes torch-native TP+SP (tp_sp.py), HF's own tp_plan (hf_tp.py) and a 2-stage
// GPipe pipeline over 2 micro-batches (pipeline.py), each correct and with bugs introduced by
// configuration or monkeypatching only.

// torch2Env names the interpreter of a virtual environment with PyTorch 2.x, transformers and
// spcheck_dump installed (.ci/run makes one); the default is where .ci/run puts it.
const torch2Env = "SPCHECK_TORCH2_PYTHON"

func torch2Python() string {
	if p := os.Getenv(torch2Env); p != "" {
		return p
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "spcheck", "torch2-venv", "bin", "python")
}

// llamaMissing is why the Llama examples cannot run ("" when they can).
var llamaMissing = sync.OnceValue(func() string {
	py := torch2Python()
	hint := "set " + torch2Env + " to a python with torch>=2.4, transformers and spcheck_dump (bash .ci/run makes one)"
	if _, err := os.Stat(py); err != nil {
		return py + " not found (" + hint + ")"
	}
	return testenv.PythonModules(py, hint, "torch.distributed.tensor", "torch.distributed.pipelining", "transformers", "spcheck_dump")
})

// llamaRun is one launch of an example script (a path under python/examples) on 2 processes,
// or, with bug "", its single-process reference run.
type llamaRun struct{ script, bug, reason string }

func (r llamaRun) name() string {
	name := strings.TrimSuffix(filepath.Base(r.script), ".py")
	if r.bug == "" {
		return name + "/ref"
	}
	return name + "/" + r.bug
}

var llamaCands = []llamaRun{
	{"llama/ref.py", "", "the single-process reference of the Llama runs"},
	{"llama/tp_sp.py", bugNone, "torch-native TP+SP"},
	{"llama/tp_sp.py", "norm-not-sp", "a norm left out of SequenceParallel"},
	{"llama/tp_sp.py", "embedding-no-allreduce", "the embedding's all-reduce monkeypatched away"},
	{"llama/hf_tp.py", bugNone, "HF's own tp_plan"},
	{"llama/hf_tp.py", "loss-over-tp", "the loss divided by the TP size"},
	{"llama/pipeline.py", bugNone, "GPipe, 2 stages, 2 micro-batches"},
	{"llama/pipeline.py", "unscaled-grads", "scale_grads=False with mean losses"},
	{"hf_packed.py", "", "the single-process reference of the fused-MLP Phi-3"},
	{"hf_packed.py", bugNone, "HF's packed_colwise: a _StridedShard weight, segmented shards"},
	{"hf_packed.py", "colwise-not-packed", "a fused gate_up weight sharded as plain colwise"},
	{"tp_mlp.py", "", "the single-process reference of the TP MLP"},
	{"tp_mlp.py", bugNone, "a row-parallel output recorded before its all-reduce"},
	{"tp_mlp.py", "allreduce-backward", "an all-reduce whose backward all-reduces again"},
}

var (
	llamaOnce sync.Once
	llamaDone chan struct{}     // closed when the launches have finished
	llamaDirs map[string]string // run name → trace dir
	llamaErr  error
)

// startLlama begins the launches in the background, once. TestMain calls it before the tests
// run when the tests that need them are selected, so that they overlap the Debian example's
// launches (both spend most of their time starting processes, not computing).
func startLlama(root string) {
	llamaOnce.Do(func() {
		llamaDone = make(chan struct{})
		go func() {
			defer close(llamaDone)
			llamaDirs, llamaErr = launchLlama(root, llamaCands)
		}()
	})
}

// llamaSelected reports whether the -run pattern selects a test that needs the launches.
func llamaSelected(run string) bool {
	re, err := regexp.Compile(run)
	return run == "" || err == nil && slices.ContainsFunc([]string{"TestLlamaVerdicts", "TestRowParallelOutputGradient", "TestLlamaUnreducedFacts", "TestPackedShards"}, re.MatchString)
}

func llamaTraces(t *testing.T) map[string]string {
	t.Helper()
	testenv.Need(t, "TORCH2", llamaMissing())
	scenario.Cases(t, llamaCands) // every launch says why it is there
	startLlama(repoRoot(t))
	<-llamaDone
	if llamaErr != nil {
		t.Fatalf("the Llama examples failed: %v", llamaErr)
	}
	return llamaDirs
}

// launchLlama runs the reference and every candidate. The examples import spcheck_dump as
// installed in the environment (pip install ./python), not from the source tree.
func launchLlama(root string, runs []llamaRun) (map[string]string, error) {
	dir, err := tempDir("spcheck-llama-")
	if err != nil {
		return nil, err
	}
	examples := filepath.Join(root, "python", "examples")
	py := torch2Python()
	dirs := map[string]string{}
	// The launches wait on process start-up and rendezvous more than they compute: a few at a
	// time finish sooner on the same cores.
	errs := make([]error, len(runs))
	sem := make(chan struct{}, llamaConcurrency)
	var wg sync.WaitGroup
	for i, c := range runs {
		out := filepath.Join(dir, strings.ReplaceAll(c.name(), "/", "-"))
		dirs[c.name()] = out
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			script, cwd := filepath.Base(c.script), filepath.Join(examples, filepath.Dir(c.script))
			if c.bug == "" {
				ctx, cancel := context.WithTimeout(context.Background(), llamaTimeout)
				defer cancel()
				_, errs[i] = runIn(ctx, py, cwd, nil, script, "--out", out)
			} else {
				errs[i] = runRanks(llamaTimeout, py, cwd, 2, script, "--out", out, "--bug", c.bug)
			}
		}()
	}
	wg.Wait()
	return dirs, errors.Join(errs...)
}

// llamaTimeout bounds one launch: seconds on an idle machine (importing torch and transformers
// is most of it), minutes on a loaded one; past this a launch is taken for hung.
const llamaTimeout = 8 * time.Minute

// llamaConcurrency is how many example launches run at once.
const llamaConcurrency = 3

// TestLlamaInstalledPackage: the examples use spcheck_dump as pip installed it (pip install
// ./python), and the installed distribution's version is the package's.
func TestLlamaInstalledPackage(t *testing.T) {
	testenv.Need(t, "TORCH2", llamaMissing())
	cmd := exec.Command(torch2Python(), "-c", "import spcheck_dump, importlib.metadata as m; print(m.version('spcheck-dump'), spcheck_dump.__version__)")
	cmd.Dir = t.TempDir() // nothing of the source tree on sys.path
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if f := strings.Fields(string(out)); len(f) != 2 || f[0] != f[1] {
		t.Fatalf("installed distribution and package versions differ: %s", out)
	}
}

// TestLlamaVerdicts: each correct parallel run verifies against the single-process reference;
// each bug is caught at its first divergence, with the verdict and shape that explain it.
func TestLlamaVerdicts(t *testing.T) {
	dirs := llamaTraces(t)
	ref := open(t, dirs["ref/ref"])
	postNorm := []string{"grad/model.layers.0.post_attention_layernorm.weight", "grad/model.layers.1.post_attention_layernorm.weight"}
	cases := []verdictCase{
		{cand: "tp_sp/none", verified: true,
			reason: "torch TP+SP (parallelize_module) agrees with the reference: the row-parallel outputs' gradients are not counted twice"},
		{cand: "tp_sp/norm-not-sp", first: postNorm[0], verdict: verify.ReplicaMismatch, failing: postNorm,
			check:  checkTPReplicas,
			reason: "a norm left out of SequenceParallel: its weight grad is each rank's partial sum over its sequence shard"},
		{cand: "tp_sp/embedding-no-allreduce", first: "act/model.embed_tokens", verdict: verify.ReplicaMismatch,
			check:  checkTPReplicas,
			reason: "the vocab-parallel embedding's partial sums handed on unreduced: the first tensor after it is wrong"},
		{cand: "hf_tp/none", verified: true, reason: "HF's own tp_plan agrees with the reference"},
		{cand: "hf_tp/loss-over-tp", first: "agrad/lm_head", verdict: verify.Diverged, check: checkScaled(0.5),
			reason: "a loss divided by the TP size halves every gradient, first the logits'"},
		{cand: "pipeline/none", verified: true,
			reason: "GPipe over 2 stages and 2 micro-batches agrees: micro-batches reassemble, the loss is their mean"},
		{cand: "pipeline/unscaled-grads", first: "agrad/lm_head", verdict: verify.Diverged, check: checkScaled(2),
			reason: "per-micro-batch mean losses with scale_grads=False: gradients summed over the 2 micro-batches"},
	}
	for _, c := range cases {
		t.Run(c.cand, func(t *testing.T) { checkVerdictCase(t, ref, open(t, dirs[c.cand]), c) })
	}
}

// TestRowParallelOutputGradient: a hand-written TP MLP whose row-parallel output is recorded
// before its all-reduce (tp=partial), hooked with watch(): its gradient is recorded replicated,
// so the correct run verifies (no false ×2), and a real wrong adjoint (an all-reduce whose
// backward all-reduces again) is caught there, scaled ×2.
func TestRowParallelOutputGradient(t *testing.T) {
	dirs := llamaTraces(t)
	ref := open(t, dirs["tp_mlp/ref"])
	for _, c := range []verdictCase{
		{cand: "tp_mlp/none", verified: true, reason: "the gradient of a partial output is replicated: no false ×2"},
		{cand: "tp_mlp/allreduce-backward", first: "agrad/fc2", verdict: verify.Diverged, check: checkScaled(2),
			reason: "torch.distributed.nn.functional.all_reduce's backward sums the gradient over TP again"},
	} {
		t.Run(c.cand, func(t *testing.T) { checkVerdictCase(t, ref, open(t, dirs[c.cand]), c) })
	}
}

// TestPackedShards: HF's packed tensor parallelism (a fused gate_up weight as a _StridedShard
// DTensor, recorded as tp=shard(0,segments=2)) reassembles to the unsharded reference; the same
// weight sharded as plain colwise is caught where the gate half is used.
func TestPackedShards(t *testing.T) {
	dirs := llamaTraces(t)
	ref := open(t, dirs["hf_packed/ref"])
	for _, c := range []verdictCase{
		{cand: "hf_packed/none", verified: true, reason: "segmented shards of the packed weight, its output and grads reassemble"},
		{cand: "hf_packed/colwise-not-packed", first: "act/model.layers.0.mlp.activation_fn", verdict: verify.Diverged,
			check:  checkSignature(verify.SigTP0Right),
			reason: "rank 0 holds all of gate and splits it in two; rank 1 applies the activation to half of up"},
	} {
		t.Run(c.cand, func(t *testing.T) { checkVerdictCase(t, ref, open(t, dirs[c.cand]), c) })
	}
}

// checkSignature: the first divergence has signature kind k.
func checkSignature(k verify.SignatureKind) func(t *testing.T, first *verify.Result) {
	return func(t *testing.T, first *verify.Result) {
		t.Helper()
		if first.Signature == nil || first.Signature.Kind != k {
			t.Errorf("signature %+v, want %s", first.Signature, k)
		}
	}
}

// checkTPReplicas: the two TP ranks hold two different copies.
func checkTPReplicas(t *testing.T, first *verify.Result) {
	t.Helper()
	want := [][]int{{0}, {1}}
	if len(first.CandReplicas) != 1 || !slices.EqualFunc(first.CandReplicas[0].Groups, want, slices.Equal) {
		t.Errorf("replica groups %+v, want one disagreement with groups %v", first.CandReplicas, want)
	}
}

// checkScaled: the first divergence is the reference times c.
func checkScaled(c float64) func(t *testing.T, first *verify.Result) {
	return func(t *testing.T, first *verify.Result) {
		t.Helper()
		s := first.Signature
		if s == nil || s.Kind != verify.SigScaled || s.Scale != c {
			t.Errorf("signature %+v, want scaled ×%g", s, c)
		}
	}
}

// TestLlamaUnreducedFacts checks the two bugs that skip a reduction on the raw per-rank data,
// independently of the verifier: the unreduced norm-weight grads of the TP ranks are summands
// of the reference's grad; without its all-reduce, each rank's embedding output is right
// exactly at the tokens of its own vocabulary half (rows of the other half are never reduced
// in, so they hold what the masked lookup left there).
func TestLlamaUnreducedFacts(t *testing.T) {
	dirs := llamaTraces(t)
	ref := open(t, dirs["ref/ref"])
	norm := open(t, dirs["tp_sp/norm-not-sp"])
	name := "grad/model.layers.1.post_attention_layernorm.weight"
	want := tensorByName(t, ref, 0, name)
	b0, b1 := tensorByName(t, norm, 0, name), tensorByName(t, norm, 1, name)
	if tensor.BitEqual(b0, b1) {
		t.Errorf("norm-not-sp: %s is equal on both TP ranks", name)
	}
	if e := relErr(sum(b0, b1), want); e > partialSumRTol*100 {
		t.Errorf("norm-not-sp: the TP ranks' %s sum to the reference only within %.3g", name, e)
	}

	emb := open(t, dirs["tp_sp/embedding-no-allreduce"])
	ids, full := tensorByName(t, ref, 0, "input/ids"), tensorByName(t, ref, 0, "act/model.embed_tokens")
	const vocab, hidden = 64, 16 // python/examples/llama/model.py
	for rank := range 2 {
		got := tensorByName(t, emb, rank, "act/model.embed_tokens")
		own, other := 0, 0
		for tok, id := range ids.Data {
			row := func(d *tensor.Dense) []float64 { return d.Data[tok*hidden : (tok+1)*hidden] }
			mine := int(id)/(vocab/2) == rank
			if slices.Equal(row(got), row(full)) != mine {
				t.Errorf("rank %d token %d (id %v): equal to the reference %v, want %v", rank, tok, id, !mine, mine)
			}
			if mine {
				own++
			} else {
				other++
			}
		}
		if own == 0 || other == 0 {
			t.Errorf("rank %d: %d tokens of its vocabulary half and %d of the other: the batch does not test both", rank, own, other)
		}
	}
}

// tensorByName reads the tensor with logical name from rank's file.
func tensorByName(t *testing.T, tr *trace.Trace, rank int, name string) *tensor.Dense {
	t.Helper()
	for _, e := range tr.Files[rank].Entries {
		if e.Meta.Name == name {
			d, err := tr.Files[rank].Tensor(e)
			if err != nil {
				t.Fatal(err)
			}
			return d
		}
	}
	t.Fatalf("%s: rank %d has no %q", tr.Dir, rank, name)
	return nil
}

// TestLlamaSpcheckLines: the user-side code of each example stays within 10 lines of spcheck
// calls. Each statement calling spcheck_dump (sd.… or the dumper d.…) is marked "# spcheck N",
// numbered 1, 2, … in order; its continuation lines are part of it.
func TestLlamaSpcheckLines(t *testing.T) {
	dir := filepath.Join(repoRoot(t), "python", "examples")
	for _, script := range []string{"llama/ref.py", "llama/tp_sp.py", "llama/hf_tp.py", "llama/pipeline.py", "tp_mlp.py", "hf_packed.py"} {
		b, err := os.ReadFile(filepath.Join(dir, script))
		if err != nil {
			t.Fatal(err)
		}
		n, depth := 0, 0
		for _, line := range strings.Split(string(b), "\n") {
			code, _, _ := strings.Cut(line, "#")
			trimmed := strings.TrimSpace(code)
			calls := strings.Contains(code, "sd.") || strings.HasPrefix(trimmed, "d.")
			if i := strings.Index(line, "# spcheck "); i >= 0 {
				n++
				if !strings.HasPrefix(line[i+len("# spcheck "):], fmt.Sprint(n)) {
					t.Errorf("%s: spcheck line %q is not numbered %d", script, trimmed, n)
				}
			} else if calls && depth == 0 && !strings.HasPrefix(trimmed, "import") {
				t.Errorf("%s: %q calls spcheck_dump without a '# spcheck N' mark", script, trimmed)
			}
			depth += strings.Count(code, "(") + strings.Count(code, "[") - strings.Count(code, ")") - strings.Count(code, "]")
		}
		if n == 0 || n > 10 {
			t.Errorf("%s: %d spcheck lines, want 1 to 10", script, n)
		}
		t.Logf("%s: %d spcheck lines", script, n)
	}
}
