package verify_test

import (
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
	"github.com/spcheck/spcheck/verify"
	vt "github.com/spcheck/spcheck/verify/verifytest"
)

var benchGiB = flag.Float64("verify.bench-gib", 1, "GiB of fp32 per trace in BenchmarkCompareLarge (two traces are compared)")

// BenchmarkCompareTiny is the simulator's case: a few kilobyte-sized tensors, compared in memory
// thousands of times in a sweep.
func BenchmarkCompareTiny(b *testing.B) {
	ref, cand, err := vt.Seed002().Traces()
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := verify.Compare(ref, cand, verify.Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// benchLayout is the large benchmark's trace: 8 tp ranks, 32 logical fp32 tensors of 1/32 of
// the trace each, 24 sharded on dim 0 (read in place) and 8 on dim 1 (placed run by run).
const (
	benchRanks   = 8
	benchTensors = 32
)

// writeBenchTrace writes one trace of total bytes under dir, streaming generated fp32 values. In
// the candidate (perturb), every fourth tensor is 1 ulp off everywhere: close, not identical, so
// the element-wise comparison runs on a quarter of the data.
func writeBenchTrace(b *testing.B, dir string, total int64, perturb bool, dt tensor.DType) {
	sz := dt.Size()
	perTensor := total / benchTensors                // bytes of one logical tensor
	cols := 1024                                     // elements per row
	rows := int(perTensor / int64(sz) / int64(cols)) // global rows
	rows -= rows % benchRanks                        // even shards
	pieceElems := rows * cols / benchRanks
	if err := os.MkdirAll(dir, 0o755); err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 4<<20)
	for rank := 0; rank < benchRanks; rank++ {
		meta := trace.Meta{Format: trace.Format, Version: trace.Version, Rank: rank, World: benchRanks,
			Mesh: trace.Mesh{Axes: []string{"tp"}, Shape: []int{benchRanks}}, Coord: map[string]int{"tp": rank},
			Producer: "bench", Tensors: map[string]trace.TensorMeta{}}
		header := map[string]any{}
		var off int64
		for i := 0; i < benchTensors; i++ {
			key := fmt.Sprintf("t%02d", i)
			place, local := "tp=shard(0)", []int{rows / benchRanks, cols}
			if i%4 == 3 {
				place, local = "tp=shard(1)", []int{rows, cols / benchRanks}
			}
			meta.Tensors[key] = trace.TensorMeta{Name: "act/" + key, Kind: trace.Activation, Order: i, Place: place, Shape: []int{rows, cols}}
			n := int64(pieceElems) * int64(sz)
			header[key] = map[string]any{"dtype": dt.String(), "shape": local, "data_offsets": []int64{off, off + n}}
			off += n
		}
		doc, _ := json.Marshal(meta)
		header["__metadata__"] = map[string]string{trace.MetadataKey: string(doc)}
		hdr, _ := json.Marshal(header)
		for len(hdr)%8 != 0 {
			hdr = append(hdr, ' ')
		}
		f, err := os.Create(filepath.Join(dir, trace.FileName(rank)))
		if err != nil {
			b.Fatal(err)
		}
		binary.Write(f, binary.LittleEndian, uint64(len(hdr)))
		f.Write(hdr)
		// Keys sort as t00…t31, the offsets' order. Values: a cheap LCG mapped to [-0.5, 0.5).
		state := uint64(rank)*0x9E3779B97F4A7C15 + 1
		for i := 0; i < benchTensors; i++ {
			for left := pieceElems; left > 0; {
				m := min(left, len(buf)/sz)
				for j := 0; j < m; j++ {
					state = state*6364136223846793005 + 1442695040888963407
					v := math.Float32frombits(0x3f800000|uint32(state>>41)) - 1.5
					bits := math.Float32bits(v)
					if dt == tensor.BF16 {
						bits >>= 16 // truncated: any bf16 value will do
					}
					if perturb && i%4 == 0 {
						bits ^= 1
					}
					if dt == tensor.BF16 {
						binary.LittleEndian.PutUint16(buf[2*j:], uint16(bits))
					} else {
						binary.LittleEndian.PutUint32(buf[4*j:], bits)
					}
				}
				if _, err := f.Write(buf[:sz*m]); err != nil {
					b.Fatal(err)
				}
				left -= m
			}
		}
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

func dirBytes(b *testing.B, dir string) (int64, []string) {
	paths, _ := filepath.Glob(filepath.Join(dir, "*.safetensors"))
	var n int64
	for _, p := range paths {
		st, err := os.Stat(p)
		if err != nil {
			b.Fatal(err)
		}
		n += st.Size()
	}
	return n, paths
}

// BenchmarkCompareLarge compares two 8-rank traces, fp32 and bf16 (default 1 GiB each, 2 GiB
// in all; -verify.bench-gib sets the size) end to end — open, reassemble, MD5 both sides, compare — and
// reports, measured in the same run on the same files: throughput, peak heap against the
// largest logical tensor, and md5sum's time over the same files (one process, and two in
// parallel). Run it alone: go test ./verify -run '^$' -bench CompareLarge -benchtime 3x
func BenchmarkCompareLarge(b *testing.B) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.BF16} {
		b.Run(dt.String(), func(b *testing.B) { benchCompareLarge(b, dt) })
	}
}

func benchCompareLarge(b *testing.B, dt tensor.DType) {
	dir := b.TempDir()
	total := int64(*benchGiB * (1 << 30))
	refDir, candDir := filepath.Join(dir, "ref"), filepath.Join(dir, "cand")
	writeBenchTrace(b, refDir, total, false, dt)
	writeBenchTrace(b, candDir, total, true, dt)
	refBytes, refPaths := dirBytes(b, refDir)
	candBytes, candPaths := dirBytes(b, candDir)
	all := refBytes + candBytes
	largest := total / benchTensors

	md5 := func(parallel int) time.Duration {
		start := time.Now()
		paths := append(append([]string{}, refPaths...), candPaths...)
		args := append([]string{"-P", fmt.Sprint(parallel), "-n", fmt.Sprint((len(paths) + parallel - 1) / parallel), "md5sum"}, paths...)
		cmd := exec.Command("xargs", args...)
		cmd.Stdin = nil
		cmd.Args = append([]string{"xargs"}, args...)
		cmd.Stdout = nil
		if err := cmd.Run(); err != nil {
			b.Skipf("md5sum via xargs: %v", err)
		}
		return time.Since(start)
	}
	md5(2) // warm the page cache for both tools alike

	var peak atomic.Uint64
	stop := make(chan struct{})
	go func() {
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
				runtime.ReadMemStats(&ms)
				if v := ms.HeapInuse; v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	cpu := func(who int) time.Duration {
		var ru syscall.Rusage
		syscall.Getrusage(who, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.SetBytes(all)
	cpu0 := cpu(syscall.RUSAGE_SELF)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ref, err := trace.OpenDir(refDir)
		if err != nil {
			b.Fatal(err)
		}
		cand, err := trace.OpenDir(candDir)
		if err != nil {
			b.Fatal(err)
		}
		rep, err := verify.Compare(ref, cand, verify.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if !rep.Verified() || rep.Count(verify.Close) != benchTensors/4 {
			b.Fatalf("verified %v with %d close tensors, want %d", rep.Verified(), rep.Count(verify.Close), benchTensors/4)
		}
		ref.Close()
		cand.Close()
	}
	b.StopTimer()
	cpuCompare := (cpu(syscall.RUSAGE_SELF) - cpu0) / time.Duration(b.N)
	close(stop)
	perOp := b.Elapsed() / time.Duration(b.N)
	child0 := cpu(syscall.RUSAGE_CHILDREN)
	one := md5(1)
	cpuMD5 := cpu(syscall.RUSAGE_CHILDREN) - child0
	two := md5(2)
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(all)/perOp.Seconds()/1e9, "GB/s")
	b.ReportMetric(float64(all)/one.Seconds()/1e9, "md5sum-GB/s")
	b.ReportMetric(float64(all)/two.Seconds()/1e9, "md5sum-P2-GB/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peak.Load())/float64(largest), "peak/largest")
	b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MiB")
	b.ReportMetric(cpuCompare.Seconds()/(float64(all)/1e9), "cpu-s/GB")
	b.ReportMetric(cpuMD5.Seconds()/(float64(all)/1e9), "md5sum-cpu-s/GB")
	b.Logf("%d bytes in %d files; largest logical tensor %d MiB; compare %v/op (%v CPU); md5sum %v (1 process, %v CPU), %v (2 processes); GOMAXPROCS %d",
		all, len(refPaths)+len(candPaths), largest>>20, perOp, cpuCompare, one, cpuMD5, two, runtime.GOMAXPROCS(0))
}
