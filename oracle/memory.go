package oracle

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spcheck/spcheck/model"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
)

// Footprint is what one oracle run holds in memory, in bytes. Every recorded tensor (inputs,
// parameters, activations, their gradients, losses) lives until the run's Result is dropped,
// each as float64; so do the attention probabilities of every layer, [B, heads, S, S], which
// the backward reads. Encoded is the trace those records become (inputs as I64, the rest in
// the plan's dtype), which a caller holding the trace in memory adds on top.
type Footprint struct {
	Inputs, Params, Grads, Activations, ActivationGrads, Losses int64
	Attention                                                   int64
	Encoded                                                     int64
}

// Records is the bytes of every recorded tensor (Result.Records, float64).
func (f Footprint) Records() int64 {
	return f.Inputs + f.Params + f.Grads + f.Activations + f.ActivationGrads + f.Losses
}

// Run is the working set of Run: the records, the attention probabilities, and a margin of
// one part in eight for the kernels' temporaries (each at most one activation-sized tensor at
// a time, and the GEMM's packing buffers).
func (f Footprint) Run() int64 {
	w := f.Records() + f.Attention
	return w + w/8
}

// EstimateMemory computes p's oracle footprint from the model's shapes, without allocating:
// the same tensors Run records (TestMemoryEstimateIsExact holds the two together).
func EstimateMemory(p plan.Plan) Footprint {
	m := p.Model
	const f64 = 8
	b, s, h, ff, v := int64(m.Batch), int64(m.Seq), int64(m.Hidden), int64(m.FFN), int64(m.Vocab)
	layers, d := int64(m.Layers), int64(m.MTP)
	bs := b * s
	var params int64
	for _, ps := range model.ParamShapes(m) {
		n := int64(1)
		for _, x := range ps.Shape {
			n *= int64(x)
		}
		params += n
	}
	inputs := (3+3*d)*bs + int64(len(m.CuSeqlens())) // ids, labels, mask (and per depth), cu_seqlens
	// Per transformer layer (L main, D MTP): q, k, v, their RoPE outputs, context, attn_norm,
	// attn_out, attn_residual, mlp_norm, mlp_out, output [B,S,H]; gate, up, act [B,S,F]. Beside
	// them: embed and final_norm [B,S,H] and logits [B,S,V]; per depth embed, enorm, hnorm,
	// eh_proj and final_norm [B,S,H] and logits [B,S,V].
	acts := (layers+d)*(12*bs*h+3*bs*ff) + (2+5*d)*bs*h + (1+d)*bs*v
	elems := inputs + 2*params + 2*acts + 2 + d
	return Footprint{
		Inputs:          f64 * inputs,
		Params:          f64 * params,
		Grads:           f64 * params,
		Activations:     f64 * acts,
		ActivationGrads: f64 * acts,
		Losses:          f64 * (2 + d),
		Attention:       f64 * (layers + d) * b * int64(m.Heads) * s * s,
		Encoded:         int64(tensor.I64.Size())*inputs + int64(p.DType.Size())*(elems-inputs),
	}
}

// MemoryError is a plan whose oracle run would not fit in this machine's memory.
type MemoryError struct {
	Plan          string
	Need          Footprint
	InMemoryTrace bool // the trace, Need.Encoded, was counted too
	Limit         int64
	LimitSrc      string // where the limit comes from (cgroup, /proc/meminfo, SPCHECK_MEMORY_LIMIT)
}

func (e *MemoryError) Error() string {
	f := e.Need
	need, trace := f.Run(), ""
	if e.InMemoryTrace {
		need += f.Encoded
		trace = fmt.Sprintf(", the in-memory trace %s", gib(f.Encoded))
	}
	return fmt.Sprintf("oracle: the reference run of plan %q needs about %s (activations and their gradients %s, "+
		"attention probabilities %s, parameters and gradients %s, +1/8 for temporaries%s) but this machine has %s (%s); "+
		"reduce seq, batch, layers or hidden, or take the reference from the GPU executor in float64",
		e.Plan, gib(need), gib(f.Activations+f.ActivationGrads), gib(f.Attention), gib(f.Params+f.Grads), trace, gib(e.Limit), e.LimitSrc)
}

func gib(n int64) string { return fmt.Sprintf("%.3g GiB", float64(n)/(1<<30)) }

// CheckMemory refuses p before anything is allocated when its oracle run would exceed the
// machine's memory (MachineMemory): Footprint.Run, plus Footprint.Encoded when the caller
// keeps the trace in memory too (an in-memory reference) rather than streaming it to disk.
// With no known limit it lets the run go.
func CheckMemory(p plan.Plan, inMemoryTrace bool) error {
	limit, src := MachineMemory()
	if limit <= 0 {
		return nil
	}
	f := EstimateMemory(p)
	need := f.Run()
	if inMemoryTrace {
		need += f.Encoded
	}
	if need > limit {
		return &MemoryError{Plan: p.String(), Need: f, InMemoryTrace: inMemoryTrace, Limit: limit, LimitSrc: src}
	}
	return nil
}

// MachineMemory is the memory this process may use, in bytes, and where that figure comes
// from: SPCHECK_MEMORY_LIMIT (bytes, or with a K, M, G or T suffix: powers of 1024) when set,
// else the smaller of the cgroup's limit (v2 memory.max, v1 memory.limit_in_bytes) and the
// machine's MemTotal; 0 when none can be read (not Linux).
func MachineMemory() (int64, string) {
	if s := os.Getenv("SPCHECK_MEMORY_LIMIT"); s != "" {
		if n, err := parseBytes(s); err == nil && n > 0 {
			return n, "SPCHECK_MEMORY_LIMIT"
		}
	}
	limit, src := meminfoTotal(), "MemTotal in /proc/meminfo"
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && n > 0 && (limit == 0 || n < limit) {
			limit, src = n, path
		}
	}
	return limit, src
}

func meminfoTotal() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err == nil {
				return kb << 10
			}
		}
	}
	return 0
}

// parseBytes reads "123", "64K", "1.5G", "2T" (powers of 1024).
func parseBytes(s string) (int64, error) {
	s = strings.TrimSpace(strings.ToUpper(strings.TrimSuffix(strings.TrimSuffix(s, "B"), "b")))
	mult := 1.0
	if n := len(s); n > 0 {
		if i := strings.IndexByte("KMGT", s[n-1]); i >= 0 {
			mult, s = float64(int64(1)<<(10*(i+1))), s[:n-1]
		}
	}
	x, err := strconv.ParseFloat(s, 64)
	if err != nil || x < 0 {
		return 0, fmt.Errorf("bad byte count %q", s)
	}
	return int64(x * mult), nil
}
