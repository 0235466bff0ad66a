package simulate

import (
	"errors"
	"fmt"
	"maps"
	goruntime "runtime"
	"sync"

	"github.com/spcheck/spcheck/internal/buildinfo"
	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate/runtime"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Producer is the trace producer name of the simulator.
const Producer = "simulate"

// Run compiles p (with its bug variant v, nil for none), executes it on CPU ranks and returns
// the per-rank trace (in memory).
func Run(p plan.Plan, v *Variant) (*trace.Trace, error) {
	c, err := Compile(p, v)
	if err != nil {
		return nil, err
	}
	return c.Run()
}

// Run executes the programs and returns the per-rank trace, held in memory (no file round
// trip). Each rank's traced tensors are dropped from the runtime's result as soon as its file is
// built, so a large run never holds them twice.
func (c *Compiled) Run() (*trace.Trace, error) {
	res, err := runtime.RunIn(c.Plan.DType, c.Programs, c.Init)
	if err != nil {
		return nil, err
	}
	return c.Trace(res)
}

// Trace renders a run's traced tensors as the simulator's in-memory trace (what Run returns),
// dropping each rank's tensors from res as soon as its file is built, so a large run never
// holds them twice.
func (c *Compiled) Trace(res *runtime.Result) (*trace.Trace, error) {
	files := make([]*trace.File, len(res.Traces))
	err := forRanks(len(files), func(r int) error {
		w, err := c.traceWriter(r, res.Traces[r])
		res.Traces[r] = nil
		if err != nil {
			return err
		}
		files[r], err = w.File(trace.FileName(r))
		return err
	})
	if err != nil {
		return nil, err
	}
	return trace.New(Producer, files)
}

// TraceFiles renders each rank's traced tensors as a trace file: mesh dp × pp × mb × tp, inputs
// stored as I64, everything else in the plan's dtype. Ranks are rendered in parallel; each
// file's bytes depend only on its rank's tensors.
func (c *Compiled) TraceFiles(res *runtime.Result) ([][]byte, error) {
	out := make([][]byte, len(res.Traces))
	err := forRanks(len(out), func(r int) error {
		w, err := c.traceWriter(r, res.Traces[r])
		if err != nil {
			return err
		}
		out[r], err = w.Bytes()
		return err
	})
	return out, err
}

func (c *Compiled) traceWriter(r int, traced []runtime.Traced) (*trace.Writer, error) {
	prog := c.Programs[r]
	w := trace.NewWriter(trace.Meta{Rank: r, World: prog.World, Mesh: c.l.mesh(), Coord: maps.Clone(prog.Coord),
		Producer: Producer, ProducerVersion: buildinfo.Version(), Plan: c.Plan.String(), Seed: c.Plan.Seed})
	w.SetDump(c.Dump)
	for _, t := range traced {
		dt := c.Plan.DType
		if t.Tag.Kind == string(trace.Input) {
			dt = tensor.I64
		}
		tm := trace.TensorMeta{Name: t.Tag.Name, Kind: trace.Kind(t.Tag.Kind), Order: t.Tag.Order, Place: t.Tag.Place,
			Shape: t.Tag.Shape, Coord: t.Tag.Coord}
		if err := w.Add(t.Tag.Key, tm, dt, t.T); err != nil {
			return nil, fmt.Errorf("simulate: rank %d: %w", r, err)
		}
	}
	return w, nil
}

// forRanks calls f for every rank on GOMAXPROCS workers and returns the errors joined in rank
// order.
func forRanks(n int, f func(r int) error) error {
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for w := 0; w < min(n, goruntime.GOMAXPROCS(0)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range next {
				errs[r] = f(r)
			}
		}()
	}
	for r := 0; r < n; r++ {
		next <- r
	}
	close(next)
	wg.Wait()
	return errors.Join(errs...)
}
