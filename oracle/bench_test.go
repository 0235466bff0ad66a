package oracle

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/spcheck/spcheck/internal/testenv"
	"github.com/spcheck/spcheck/model"
	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/plan"
)

// benchPlan is the benchmark model: hidden 512, 4 layers, seq 512, batch 2, 8 heads,
// ffn 1376 (≈ 8/3·H, Llama's SwiGLU sizing), vocab 1000, one MTP depth.
const benchPlan = "hidden=512,heads=8,layers=4,ffn=1376,seq=512,batch=2,vocab=1000,mtp=1"

// matmulFlops counts the floating-point operations of every matrix product of one forward and
// backward of m (2 per multiply-add; attention over each sequence's full square block, as
// nn.Attention computes it; the backward of each product is two products of the same size).
func matmulFlops(m plan.Model) float64 {
	n, h, f, v := float64(m.Batch*m.Seq), float64(m.Hidden), float64(m.FFN), float64(m.Vocab)
	sq := 0.0
	for _, l := range m.SeqLens() {
		sq += float64(l * l)
	}
	attn := 2 * 2 * float64(m.Batch) * sq * h // q·kᵀ and P·v over every head
	layer := 2*n*h*h*4 + 2*n*h*f*3 + attn
	layers := float64(m.Layers + m.MTP)
	fwd := layers*layer + float64(1+m.MTP)*2*n*h*v + float64(m.MTP)*2*n*2*h*h
	return 3 * fwd
}

// BenchmarkForwardBackward times one forward and backward of the benchmark model, side by side
// in one run: the oracle with every product on gonum's Dgemm (go-gonum), the oracle with the
// blocked GEMM (go-blocked, the default; the same bits), and oracle/torchref's PyTorch float64
// model of the same shapes (torch; Debian's python3-torch on OpenBLAS, as many threads as
// GOMAXPROCS). Each reports GFLOP/s (wall clock) and GFLOP/cpu-s (per second of this process's
// CPU time, the figure that survives a shared machine), counting matmulFlops.
//
//	go test ./oracle -run '^$' -bench ForwardBackward -benchtime 2x -cpu 2
func BenchmarkForwardBackward(b *testing.B) {
	p, err := plan.Parse(benchPlan)
	if err != nil {
		b.Fatal(err)
	}
	flops := matmulFlops(p.Model)
	params, in := model.InitParams(p.Model), model.MakeInputs(p.Model)
	for _, impl := range []struct {
		name  string
		gonum bool
	}{{"go-gonum", true}, {"go-blocked", false}} {
		b.Run(impl.name, func(b *testing.B) {
			defer nn.GonumOnly(nn.GonumOnly(impl.gonum))
			cpu0 := testenv.ProcessCPU()
			for b.Loop() {
				if _, err := RunWith(p.Model, params, in); err != nil {
					b.Fatal(err)
				}
			}
			reportFlops(b, flops*float64(b.N), b.Elapsed(), testenv.ProcessCPU()-cpu0)
		})
	}
	b.Run("torch", func(b *testing.B) {
		testenv.NeedTorch(b)
		threads := strconv.Itoa(runtime.GOMAXPROCS(0))
		cmd := exec.Command(torchPython, filepath.Join("torchref", "bench.py"), p.String(), strconv.Itoa(b.N))
		cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS="+threads, "OMP_NUM_THREADS="+threads)
		out, err := cmd.CombinedOutput()
		if err != nil {
			b.Fatalf("bench.py: %v\n%s", err, out)
		}
		var wall, cpu float64
		var th int
		var blas string
		if _, err := fmt.Sscanf(string(out), "wall_s=%g cpu_s=%g threads=%d blas=%s", &wall, &cpu, &th, &blas); err != nil {
			b.Fatalf("bench.py printed %q: %v", out, err)
		}
		b.Logf("torch %d threads, BLAS %s", th, blas)
		b.ReportMetric(wall*1e9, "ns/op")
		reportFlops(b, flops, time.Duration(wall*1e9), time.Duration(cpu*1e9))
	})
}

func reportFlops(b *testing.B, flops float64, wall, cpu time.Duration) {
	b.ReportMetric(flops/wall.Seconds()/1e9, "GFLOP/s")
	if cpu > 0 {
		b.ReportMetric(flops/cpu.Seconds()/1e9, "GFLOP/cpu-s")
	}
}
