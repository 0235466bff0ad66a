package torchdist

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
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

const systemPython = testenv.SystemPython

// runTimeout bounds one launch of the example; it takes seconds, so this only stops a hang
// (e.g. a P2P that never matches) from eating the whole go test timeout.
const runTimeout = 3 * time.Minute

// waitDelay is how long a cancelled run may keep its output pipes open before Wait gives up.
const waitDelay = 10 * time.Second

// partialSumRTol bounds |Σ_t g_t − g| / |g| between the per-rank partial norm grads of the
// no-norm-allreduce run and the all-reduced grads of the correct run: the same float64 values
// summed by gloo in another order, so a few units of roundoff (2⁻⁵³ ≈ 1.1e-16) at most.
const partialSumRTol = 1e-14

// The example's bugs (python/examples/megatron_block.py --bug).
const (
	bugNone       = "none"
	bugNoNormGrad = "no-norm-allreduce"
	bugPartialP2P = "partial-p2p"
)

// The candidate layout: tp 2 × pp 2, the example's default 4 layers split over the stages.
const (
	candidateTP    = 2
	candidatePP    = 2
	layersPerStage = 2
)

// The boundary of the pipeline: stage 0's last layer output is sent to stage 1's first layer.
const (
	boundarySent     = "act/layers.1"
	boundaryReceived = "act/layers.2.input"
)

// torchMissing is why torch cannot be used ("" when it can); found once, importing torch
// takes most of a second.
var torchMissing = sync.OnceValue(func() string {
	out, err := exec.Command(systemPython, "-c", "import torch").CombinedOutput()
	if err == nil {
		return ""
	}
	return systemPython + " cannot import torch (apt-get install -y python3-torch): " + err.Error() + "\n" + string(out)
})

func requireTorch(t *testing.T) {
	t.Helper()
	testenv.Need(t, "TORCH", torchMissing())
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// runPython runs the interpreter in dir; a failure's error carries the command and its output.
func runPython(interp, dir string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), runTimeout)
	defer cancel()
	return runIn(ctx, interp, dir, nil, args...)
}

// runIn runs the interpreter in dir with extra environment variables until ctx is done.
func runIn(ctx context.Context, interp, dir string, env []string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, interp, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	ownProcessGroup(cmd)
	cmd.WaitDelay = waitDelay
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%s %s (in %s, %s): %v\n%s", interp, strings.Join(args, " "), dir, strings.Join(env, " "), err, out)
	}
	return string(out), nil
}

// runRanks runs world processes of a torch.distributed script in dir, with the environment
// torchrun would give them (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT): no launcher process
// importing torch a third time. The first failure stops the other ranks (which would
// otherwise wait in a collective until the timeout).
func runRanks(timeout time.Duration, interp, dir string, world int, args ...string) error {
	port, err := freePort()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	errs := make([]error, world)
	var wg sync.WaitGroup
	for r := range world {
		wg.Add(1)
		go func() {
			defer wg.Done()
			env := []string{fmt.Sprintf("RANK=%d", r), fmt.Sprintf("LOCAL_RANK=%d", r), fmt.Sprintf("WORLD_SIZE=%d", world),
				fmt.Sprintf("LOCAL_WORLD_SIZE=%d", world), "MASTER_ADDR=127.0.0.1", fmt.Sprintf("MASTER_PORT=%d", port)}
			if _, errs[r] = runIn(ctx, interp, dir, env, args...); errs[r] != nil {
				cancel()
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// freePort returns a TCP port on the loopback interface that nothing listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// runs holds the traces of the example's launches, shared by the tests of this package (each
// launch costs seconds).
type runs struct {
	ref  string
	cand map[string]string // candidate name → trace dir
}

// The candidate runs, all from one launch (the process start-up is most of its cost): the
// 4-process layout with each bug, with one micro-batch and with two (GPipe). A candidate's name
// is "mb<M>/<bug>", its directory under the launch's.
var (
	candidateBugs         = []string{bugNone, bugNoNormGrad, bugPartialP2P}
	candidateMicrobatches = []string{"1", "2"}
)

var (
	runsOnce sync.Once
	runsVal  *runs
	runsErr  error
	tempDirs []string // removed in TestMain: several tests share them
)

func exampleRuns(t *testing.T) *runs {
	t.Helper()
	requireTorch(t)
	runsOnce.Do(func() { runsVal, runsErr = launchAll(repoRoot(t)) })
	if runsErr != nil {
		t.Fatalf("the example runs failed: %v", runsErr)
	}
	return runsVal
}

func launchAll(root string) (*runs, error) {
	dir, err := tempDir("spcheck-torchdist-")
	if err != nil {
		return nil, err
	}
	example := filepath.Join("python", "examples", "megatron_block.py")
	r := &runs{ref: filepath.Join(dir, "ref"), cand: map[string]string{}}
	if _, err := runPython(systemPython, root, example, "--out", r.ref); err != nil {
		return nil, err
	}
	cand := filepath.Join(dir, "cand")
	if _, err := runPython(systemPython, root, example, "--tp", fmt.Sprint(candidateTP), "--pp", fmt.Sprint(candidatePP),
		"--out", cand, "--bug", strings.Join(candidateBugs, ","), "--microbatches", strings.Join(candidateMicrobatches, ",")); err != nil {
		return nil, err
	}
	for _, m := range candidateMicrobatches {
		for _, b := range candidateBugs {
			r.cand["mb"+m+"/"+b] = filepath.Join(cand, "mb"+m, b)
		}
	}
	return r, nil
}

func TestMain(m *testing.M) {
	flag.Parse()
	if root, err := filepath.Abs(filepath.Join("..", "..")); err == nil && llamaMissing() == "" && llamaSelected(flag.Lookup("test.run").Value.String()) {
		startLlama(root)
	}
	code := m.Run()
	if llamaDone != nil {
		<-llamaDone // its processes write into a temporary directory removed below
	}
	for _, d := range tempDirs {
		os.RemoveAll(d)
	}
	os.Exit(code)
}

var tempDirsMu sync.Mutex

// tempDir makes a temporary directory that TestMain removes.
func tempDir(pattern string) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err == nil {
		tempDirsMu.Lock()
		tempDirs = append(tempDirs, dir)
		tempDirsMu.Unlock()
	}
	return dir, err
}

func open(t *testing.T, dir string) *trace.Trace {
	t.Helper()
	tr, err := trace.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tr.Close)
	return tr
}

// tensorOf reads the tensor with key name from rank's file.
func tensorOf(t *testing.T, tr *trace.Trace, rank int, name string) *tensor.Dense {
	t.Helper()
	f := tr.Files[rank]
	e := f.Entry(name)
	if e == nil {
		t.Fatalf("%s: rank %d has no tensor %q", tr.Dir, rank, name)
	}
	d, err := f.Tensor(e)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// rankOf is the global rank of mesh coordinate (pp, tp), tp varying fastest as in the example.
func rankOf(pp, tp int) int { return pp*candidateTP + tp }

// TestTracesAreWellFormed: every trace opens and validates; the candidate holds exactly the
// reference's logical tensors, each with the reference's execution order (the dumper's "layers"
// order is the same on a pipeline stage as in the single-device run).
func TestTracesAreWellFormed(t *testing.T) {
	r := exampleRuns(t)
	ref := open(t, r.ref)
	if m := ref.Files[0].Meta; m.World != 1 || m.Producer != "torch" {
		t.Fatalf("reference: world %d producer %q, want 1 and torch", m.World, m.Producer)
	}
	refOrder := map[string]int{}
	for _, e := range ref.Files[0].Entries {
		refOrder[e.Meta.Name] = e.Meta.Order
	}
	for bug, dir := range r.cand {
		cand := open(t, dir)
		m := cand.Files[0].Meta
		realAxes := slices.DeleteFunc(slices.Clone(m.Mesh.Axes), func(a string) bool { return a == "mb" })
		if m.World != candidateTP*candidatePP || !slices.Equal(realAxes, []string{"pp", "tp"}) {
			t.Fatalf("%s: world %d mesh %v, want 4 ranks on pp×tp (and the virtual mb)", bug, m.World, m.Mesh)
		}
		seen := map[string]bool{}
		for _, f := range cand.Files {
			for _, e := range f.Entries {
				want, ok := refOrder[e.Meta.Name]
				if !ok {
					t.Errorf("%s rank %d: %q is not in the reference", bug, f.Meta.Rank, e.Meta.Name)
				} else if e.Meta.Order != want {
					t.Errorf("%s rank %d: %q has order %d, the reference %d", bug, f.Meta.Rank, e.Meta.Name, e.Meta.Order, want)
				}
				seen[e.Meta.Name] = true
			}
		}
		for name := range refOrder {
			if !seen[name] {
				t.Errorf("%s: no rank holds %q", bug, name)
			}
		}
	}
}

// normGrads are the tensors the no-norm-allreduce bug leaves unreduced.
var normGrads = []string{"grad/layers.0.norm.weight", "grad/layers.1.norm.weight",
	"grad/layers.2.norm.weight", "grad/layers.3.norm.weight", "grad/final_norm.weight"}

// TestVerdicts: what spcheck compare REF CAND decides on the example's runs (verify.Compare;
// the CLI exits 0 exactly when the report is verified, 1 otherwise).
func TestVerdicts(t *testing.T) {
	r := exampleRuns(t)
	ref := open(t, r.ref)
	cases := []verdictCase{
		{cand: "mb1/" + bugNone, verified: true,
			reason: "the correct tp 2 × pp 2 run agrees with the single-device reference"},
		{cand: "mb1/" + bugNoNormGrad, first: "grad/layers.3.norm.weight", verdict: verify.ReplicaMismatch,
			failing: normGrads, check: checkPartialReplicas,
			reason: "unreduced norm grads: each TP rank keeps its partial sum, first seen on the last stage's last layer"},
		{cand: "mb1/" + bugPartialP2P, first: boundaryReceived, verdict: verify.Diverged, check: checkFrankentensor,
			reason: "partial P2P under SP: the received boundary tensor is the first divergence"},
		{cand: "mb2/" + bugNone, verified: true,
			reason: "two micro-batches reassemble to the reference's full batch"},
		{cand: "mb2/" + bugNoNormGrad, first: "grad/layers.3.norm.weight", verdict: verify.ReplicaMismatch,
			failing: normGrads, check: checkPartialReplicas,
			reason: "unreduced norm grads, accumulated over two micro-batches"},
		{cand: "mb2/" + bugPartialP2P, first: boundaryReceived, verdict: verify.Diverged, check: checkFrankentensorMB,
			reason: "partial P2P under SP with two micro-batches: every micro-batch's hand-off is corrupted"},
	}
	for _, c := range scenario.Cases(t, cases) {
		t.Run(c.cand, func(t *testing.T) { checkVerdictCase(t, ref, open(t, r.cand[c.cand]), c) })
	}
}

// verdictCase is what spcheck compare must say of one candidate run against the reference.
type verdictCase struct {
	cand     string
	verified bool
	first    string         // the one tensor at the first divergence
	verdict  verify.Verdict // its verdict
	failing  []string       // when set, the only tensors allowed to fail
	check    func(t *testing.T, first *verify.Result)
	reason   string
}

// checkVerdictCase compares cand with ref (verify.Compare, default options) and checks c.
func checkVerdictCase(t *testing.T, ref, cand *trace.Trace, c verdictCase) {
	t.Helper()
	rep, err := verify.Compare(ref, cand, verify.Options{})
	if err != nil {
		t.Fatalf("%s: %v", c.reason, err)
	}
	var failed []string
	for _, res := range rep.Results {
		if rep.Failed(res) {
			failed = append(failed, fmt.Sprintf("%s (%s)", res.Name, res.Verdict))
			if c.failing != nil && !slices.Contains(c.failing, res.Name) {
				t.Errorf("%s: %s fails (%s), but only %v should", c.reason, res.Name, res.Verdict, c.failing)
			}
		}
	}
	if rep.Verified() != c.verified {
		t.Fatalf("%s: verified %v, want %v; failing: %v", c.reason, rep.Verified(), c.verified, failed)
	}
	if c.verified {
		return
	}
	first := rep.First()
	if len(first) != 1 || first[0].Name != c.first || first[0].Verdict != c.verdict {
		t.Fatalf("%s: first divergence %v, want %s (%s)", c.reason, describe(first), c.first, c.verdict)
	}
	for _, res := range rep.Results {
		if res.Order < first[0].Order && rep.Failed(res) {
			t.Errorf("%s: %s fails before the first divergence", c.reason, res.Name)
		}
	}
	c.check(t, first[0])
}

func describe(rs []*verify.Result) []string {
	var out []string
	for _, r := range rs {
		out = append(out, fmt.Sprintf("%s (%s)", r.Name, r.Verdict))
	}
	return out
}

// checkPartialReplicas: the last stage's two TP ranks hold two different copies.
func checkPartialReplicas(t *testing.T, first *verify.Result) {
	t.Helper()
	want := [][]int{{rankOf(1, 0)}, {rankOf(1, 1)}}
	if len(first.CandReplicas) != 1 || !slices.EqualFunc(first.CandReplicas[0].Groups, want, slices.Equal) {
		t.Errorf("replica groups %+v, want one disagreement with groups %v", first.CandReplicas, want)
	}
	checkUnreduced(t, first)
}

// checkUnreduced: the verifier explains the disagreeing copies as what they are, the summands of
// the reference: unreduced partial sums over tp.
func checkUnreduced(t *testing.T, first *verify.Result) {
	t.Helper()
	if x := first.Explanation; x == nil || x.Mechanism != verify.MechUnreduced || !strings.Contains(x.Sentence, "unreduced partial sums over tp") {
		t.Errorf("explanation %+v, want unreduced partial sums over tp", x)
	}
}

// checkFrankentensor: the block table of Paddle's partial send/recv (p2p_communication.py
// _batched_p2p_ops then allgather_partial) for tp 2. Receiver t holds
// [flatchunk_0(X_0), flatchunk_1(X_1)]: rank 2 keeps its own chunk 0 and holds rank 3's
// chunk 1, rank 3 holds rank 2's chunk 0 and keeps its own chunk 1; rank 2's chunk 1 and rank
// 3's chunk 0 are lost.
func checkFrankentensor(t *testing.T, first *verify.Result) {
	t.Helper()
	d := first.Diagnosis
	if d == nil || d.Level != verify.LevelChunk || d.Parts != candidateTP {
		t.Fatalf("diagnosis %+v, want flat chunks of 1/%d", d, candidateTP)
	}
	r2, r3 := rankOf(1, 0), rankOf(1, 1)
	want := map[int][]string{
		r2: {"correct", fmt.Sprintf("duplicated from rank %d block 1", r3)},
		r3: {fmt.Sprintf("duplicated from rank %d block 0", r2), "correct"},
	}
	got := map[int][]string{}
	for _, row := range d.Rows {
		got[row.Rank] = blockClasses(row)
	}
	for rank, w := range want {
		if !slices.Equal(got[rank], w) {
			t.Errorf("rank %d blocks %v, want %v", rank, got[rank], w)
		}
	}
	var lost []string
	for _, b := range d.Lost {
		lost = append(lost, fmt.Sprintf("rank %d block %d", b.Rank, b.Block))
	}
	slices.Sort(lost)
	if w := []string{fmt.Sprintf("rank %d block 1", r2), fmt.Sprintf("rank %d block 0", r3)}; !slices.Equal(lost, w) {
		t.Errorf("lost %v, want %v", lost, w)
	}
}

// checkFrankentensorMB: with two micro-batches, each micro-batch loses and duplicates one chunk
// per receiver, as in checkFrankentensor.
func checkFrankentensorMB(t *testing.T, first *verify.Result) {
	t.Helper()
	d := first.Diagnosis
	if d == nil || d.Level != verify.LevelChunk {
		t.Fatalf("diagnosis %+v, want flat chunks", d)
	}
	dup := 0
	for _, row := range d.Rows {
		for _, b := range row.Blocks {
			if b.Class == verify.Duplicated {
				dup++
			}
		}
	}
	if n := 2 * candidateTP; len(d.Lost) != n || dup != n {
		t.Errorf("%d lost and %d duplicated chunks, want %d of each", len(d.Lost), dup, n)
	}
}

func blockClasses(row verify.Row) []string {
	var out []string
	for _, b := range row.Blocks {
		s := string(b.Class)
		if b.Source != nil {
			s += fmt.Sprintf(" from rank %d block %d", b.Source.Rank, b.Source.Block)
		}
		out = append(out, s)
	}
	return out
}

// TestBoundaryFacts checks the pipeline hand-off on the raw per-rank data, independently of the
// verifier: a correct P2P is bit-exact, Paddle's partial P2P gives both receivers the same
// tensor, made of flat chunk t of sender t (Paddle p2p_communication.py allgather_partial).
func TestBoundaryFacts(t *testing.T) {
	r := exampleRuns(t)
	good, bad := open(t, r.cand["mb1/"+bugNone]), open(t, r.cand["mb1/"+bugPartialP2P])
	for tp := range candidateTP {
		sent := tensorOf(t, good, rankOf(0, tp), boundarySent)
		got := tensorOf(t, good, rankOf(1, tp), boundaryReceived)
		if !tensor.BitEqual(sent, got) {
			t.Errorf("correct run, tp %d: stage 1 received other bits than stage 0 sent", tp)
		}
	}
	var chunks []*tensor.Dense
	for tp := range candidateTP {
		sent := tensorOf(t, bad, rankOf(0, tp), boundarySent)
		chunks = append(chunks, sent.Flatten().Chunk(0, candidateTP)[tp])
	}
	franken := tensor.Concat(0, chunks...)
	for tp := range candidateTP {
		got := tensorOf(t, bad, rankOf(1, tp), boundaryReceived)
		if !tensor.BitEqual(got.Flatten(), franken) {
			t.Errorf("partial-p2p run, tp %d: the receiver does not hold concat_q flatchunk_q(X_q)", tp)
		}
	}
	if tensor.BitEqual(tensorOf(t, good, rankOf(0, 0), boundarySent), tensorOf(t, good, rankOf(0, 1), boundarySent)) {
		t.Fatal("the two TP ranks' sequence shards are equal: the example no longer tests SP")
	}
}

// TestNormGradFacts: with the norm-weight grad all-reduce left out, the TP replicas of every
// norm-weight grad differ and are the summands of the correct run's grad; the fc2 bias (still
// reduced) agrees across TP in both runs.
func TestNormGradFacts(t *testing.T) {
	r := exampleRuns(t)
	good, bad := open(t, r.cand["mb1/"+bugNone]), open(t, r.cand["mb1/"+bugNoNormGrad])
	for pp := range candidatePP {
		for l := pp * layersPerStage; l < (pp+1)*layersPerStage; l++ {
			for _, name := range []string{fmt.Sprintf("grad/layers.%d.norm.weight", l), fmt.Sprintf("grad/layers.%d.mlp.fc2.bias", l)} {
				g0, g1 := tensorOf(t, good, rankOf(pp, 0), name), tensorOf(t, good, rankOf(pp, 1), name)
				if !tensor.BitEqual(g0, g1) {
					t.Errorf("correct run: %s differs across TP", name)
				}
				b0, b1 := tensorOf(t, bad, rankOf(pp, 0), name), tensorOf(t, bad, rankOf(pp, 1), name)
				isNorm := strings.Contains(name, "norm")
				if equal := tensor.BitEqual(b0, b1); equal == isNorm {
					t.Errorf("no-norm-allreduce run: %s equal across TP: got %v, want %v", name, equal, !isNorm)
				}
				if isNorm {
					if e := relErr(sum(b0, b1), g0); e > partialSumRTol {
						t.Errorf("%s: the TP partials sum to the reduced grad only within %.3g", name, e)
					}
				}
			}
		}
	}
}

func sum(a, b *tensor.Dense) *tensor.Dense {
	s := a.Clone()
	s.AddInPlace(b)
	return s
}

// relErr is max|a−b| / max|b|.
func relErr(a, b *tensor.Dense) float64 {
	var num, den float64
	for i := range a.Data {
		num = math.Max(num, math.Abs(a.Data[i]-b.Data[i]))
		den = math.Max(den, math.Abs(b.Data[i]))
	}
	return num / den
}

// TestPythonUnitTests runs spcheck_dump's unit tests under Debian's python (with torch) and,
// when it is another interpreter, the python3 on PATH (the standard-library paths, plus numpy
// and the safetensors package where installed), and the PyTorch 2.x environment's when there
// is one (DTensor, async collectives).
func TestPythonUnitTests(t *testing.T) {
	requireTorch(t)
	dir := filepath.Join(repoRoot(t), "python")
	interps := []string{systemPython}
	sys, _ := filepath.EvalSymlinks(systemPython)
	if p, err := exec.LookPath("python3"); err == nil {
		if real, _ := filepath.EvalSymlinks(p); real != sys {
			interps = append(interps, p)
		}
	}
	if llamaMissing() == "" { // PyTorch 2.x: the DTensor and async-collective tests run too
		interps = append(interps, torch2Python())
	}
	for _, interp := range interps {
		t.Run(filepath.Base(filepath.Dir(interp))+"/"+filepath.Base(interp), func(t *testing.T) {
			out, err := runPython(interp, dir, "-m", "unittest", "-v")
			if err != nil {
				t.Fatal(err)
			}
			t.Log(out)
		})
	}
}

// TestCLIExitCodes runs the spcheck binary the way the docs do: exit 0 for the correct run, 1
// for a buggy twin, 2 for a candidate with a rank file missing.
func TestCLIExitCodes(t *testing.T) {
	r := exampleRuns(t)
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go tool is needed to build spcheck: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "spcheck")
	build := exec.Command(goTool, "build", "-o", bin, "./cmd/spcheck")
	build.Dir = repoRoot(t)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/spcheck: %v\n%s", err, out)
	}
	partial := t.TempDir()
	for rank := range candidateTP*candidatePP - 1 { // all but the last rank's file
		name := trace.FileName(rank)
		b, err := os.ReadFile(filepath.Join(r.cand["mb1/"+bugNone], name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(partial, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		cand   string
		want   int
		reason string
	}{
		{r.cand["mb1/"+bugNone], 0, "the correct run is verified"},
		{r.cand["mb1/"+bugNoNormGrad], 1, "unreduced norm grads fail"},
		{r.cand["mb1/"+bugPartialP2P], 1, "the partial P2P fails"},
		{partial, 2, "a missing rank file is bad input"},
	}
	for _, c := range scenario.Cases(t, cases) {
		out, err := exec.Command(bin, "compare", r.ref, c.cand).CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != c.want {
			t.Errorf("%s: spcheck compare %s %s exited %d, want %d\n%s", c.reason, r.ref, c.cand, code, c.want, out)
		}
	}
}
