package simulate

import (
	"fmt"
	"slices"
	"strings"

	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/tensor"
)

// Region is one layer's forward on a rank, the unit of activation recompute: its name
// ("layers.1@mb0", "mtp.1.layer@mb0"), the symbols its ops define, and those of them the rest
// of the forward reads (the residual stream it hands on: what a checkpoint keeps).
type Region struct {
	Name    string
	Defs    []string
	Outputs []string
}

// region records the layer whose ops start at op index start; st holds its outputs.
func (b *builder) region(prefix string, start int, st *stream) {
	r := Region{Name: fmt.Sprintf("%s@mb%d", prefix, b.mb)}
	defined := map[string]bool{}
	for _, o := range b.ops[start:] {
		if ir.Specs[o.Op].Class == ir.Meta {
			continue
		}
		for _, s := range o.Out {
			r.Defs = append(r.Defs, s)
			defined[s] = true
		}
	}
	for _, v := range []*val{st.h, st.delta, st.resid} {
		if v != nil && defined[v.sym] && !slices.Contains(r.Outputs, v.sym) {
			r.Outputs = append(r.Outputs, v.sym)
		}
	}
	b.regions = append(b.regions, r)
}

// Recompute turns on activation recompute for every region whose name match accepts: on each
// rank holding one, the region's forward is re-run just before its backward, which then reads
// the recomputed activations (ir.Recompute). patch, if not nil, edits each recomputed op — how a
// bug variant makes the re-run differ from the forward (ms-swift #6496's apply_rope_fusion toggle). With a nil patch
// the result is bit-identical to no recompute. It returns the number of regions recomputed.
func (c *Compiled) Recompute(match func(region string) bool, patch func(o *ir.Op)) (int, error) {
	n := 0
	for r, prog := range c.Programs {
		for _, reg := range c.Regions[r] {
			if !match(reg.Name) {
				continue
			}
			k, err := ir.Recompute(prog, reg.Defs, reg.Outputs, patch)
			if err != nil {
				return n, fmt.Errorf("recompute %s: %w", reg.Name, err)
			}
			if k > 0 {
				n++
			}
		}
	}
	return n, nil
}

// RecomputeTraceKey is the prefix of the trace key and name under which TraceRecomputed
// records a recomputed activation.
const RecomputeTraceKey = "recompute/"

// TraceRecomputed makes every traced activation that has a recomputed twin traced a second time,
// right where the twin is computed, under "recompute/" + its key and name: the probe of the
// recompute-determinism check (the forward and its re-run must agree bit for bit). The extra
// tensors have no counterpart in the oracle; callers compare them with their forward originals
// and drop them before comparing with a reference.
func (c *Compiled) TraceRecomputed() {
	for _, prog := range c.Programs {
		ir.StripFrees(prog)
		traces := map[string][]ir.Op{} // twin symbol → traces of the original
		for _, o := range prog.Ops {
			if o.Op == ir.OpTrace {
				traces[o.In[0]+ir.RecomputeSuffix] = append(traces[o.In[0]+ir.RecomputeSuffix], o)
			}
		}
		var out []ir.Op
		for _, o := range prog.Ops {
			out = append(out, o)
			for _, s := range o.Out {
				for _, t := range traces[s] {
					tag := *t.Trace
					tag.Key, tag.Name = RecomputeTraceKey+tag.Key, RecomputeTraceKey+tag.Name
					out = append(out, ir.Op{Op: ir.OpTrace, In: []string{s}, Trace: &tag, Role: "recompute.probe"})
				}
			}
		}
		prog.Ops = out
		ir.InsertFrees(prog)
	}
}

// SplitRecomputed removes the recompute probes (TraceRecomputed) from res and returns the
// logical names of the activations whose recompute differs bitwise from their forward, in the
// order ranks first record them.
func SplitRecomputed(res *runtime.Result) []string {
	var differ []string
	for r, traced := range res.Traces {
		byKey := map[string]*tensor.Dense{}
		for _, t := range traced {
			byKey[t.Tag.Key] = t.T
		}
		kept := traced[:0]
		for _, t := range traced {
			orig, isProbe := strings.CutPrefix(t.Tag.Key, RecomputeTraceKey)
			if !isProbe {
				kept = append(kept, t)
				continue
			}
			if fwd := byKey[orig]; fwd == nil || !tensor.BitEqual(fwd, t.T) {
				name := strings.TrimPrefix(t.Tag.Name, RecomputeTraceKey)
				if !slices.Contains(differ, name) {
					differ = append(differ, name)
				}
			}
		}
		res.Traces[r] = kept
	}
	return differ
}
