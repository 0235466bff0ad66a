package oracle

import (
	"fmt"
	"strconv"

	"github.com/spcheck/spcheck/internal/buildinfo"
	"github.com/spcheck/spcheck/nn"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Producer is the trace producer name of the oracle.
const Producer = "oracle"

// WriteTrace runs p.Model and writes the reference trace into dir (rank-00000.safetensors):
// world 1, an empty mesh, producer "oracle", the plan string in Meta.Plan. Inputs are stored
// as I64, everything else in p.DType. The parallel keys of p are recorded in the plan string
// but do not change the oracle's computation.
func WriteTrace(dir string, p plan.Plan) error { return WriteTraceDump(dir, p, nil) }

// WriteTraceDump is WriteTrace storing the tensors as d says (fingerprints for some; nil: all
// in full). The fingerprints are computed as the tensors are added, so the full data of a
// fingerprinted tensor is never written.
func WriteTraceDump(dir string, p plan.Plan, d *trace.Dump) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if err := CheckMemory(p, false); err != nil {
		return err
	}
	res, err := Run(p.Model)
	if err != nil {
		return err
	}
	return writeResult(dir, p, res, d)
}

// writeResult writes res as p's reference trace into dir, stored as d says.
func writeResult(dir string, p plan.Plan, res *Result, d *trace.Dump) error {
	w, err := TraceWriterDump(p, res, d)
	if err != nil {
		return err
	}
	if _, err := w.WriteDir(dir); err != nil {
		return fmt.Errorf("oracle: writing the trace into %s: %w", dir, err)
	}
	return nil
}

// TraceWriter holds res as p's reference trace file, ready to be written to a directory or
// rendered in memory (Writer.Bytes) for an in-memory comparison. It keeps references to res's
// tensors (trace.Writer.AddRef), encoding them only when the file is written (streamed, a chunk
// at a time) or opened, so res must not change before then.
func TraceWriter(p plan.Plan, res *Result) (*trace.Writer, error) {
	return TraceWriterDump(p, res, nil)
}

// TraceWriterDump is TraceWriter storing the tensors as d says (trace.Writer.SetDump).
func TraceWriterDump(p plan.Plan, res *Result, d *trace.Dump) (*trace.Writer, error) {
	w := trace.NewWriter(Meta(p))
	w.SetDump(d)
	for _, rec := range res.Records {
		dt := p.DType
		if rec.Kind == trace.Input {
			dt = tensor.I64
		}
		tm := trace.TensorMeta{Name: rec.Name, Kind: rec.Kind, Order: rec.Order, Shape: shapeOf(rec.Tensor)}
		if err := w.AddRef(rec.Name, tm, dt, rec.Tensor); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// Meta is the file metadata of p's oracle trace. Extra records the model constants that are
// not plan keys, for readers that re-implement the model.
func Meta(p plan.Plan) trace.Meta {
	return trace.Meta{Rank: 0, World: 1, Mesh: trace.Mesh{Axes: []string{}, Shape: []int{}},
		Producer: Producer, ProducerVersion: buildinfo.Version(), Plan: p.String(), Seed: p.Seed,
		Extra: map[string]string{
			"rmsnorm_eps":  strconv.FormatFloat(nn.RMSNormEps, 'g', -1, 64),
			"rope":         "rotate_half",
			"rope_base":    strconv.FormatFloat(nn.RoPEBase, 'g', -1, 64),
			"ignore_index": strconv.Itoa(nn.IgnoreIndex),
			"mtp_hidden":   "final_norm",
		}}
}

// shapeOf is t's shape, [] for a scalar.
func shapeOf(t *tensor.Dense) []int {
	if t.Shape == nil {
		return []int{}
	}
	return t.Shape
}
