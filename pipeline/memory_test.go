package pipeline

import (
	"errors"
	"strings"
	"testing"

	"github.com/spcheck/spcheck/internal/scenario"
	"github.com/spcheck/spcheck/oracle"
	"github.com/spcheck/spcheck/plan"
)

// TestSimulatorMemoryIsALowerBound: the pieces the simulated ranks trace, as float64, hold at
// least every logical tensor the estimate counts (Footprint.Records), whatever the split.
func TestSimulatorMemoryIsALowerBound(t *testing.T) {
	for _, c := range scenario.Cases(t, []struct{ plan, reason string }{
		{"hidden=16", "one rank holds everything once"},
		{"tp=2,sp=megatron", "sharded and replicated pieces"},
		{"pp=2,microbatches=2", "stages and micro-batches"},
	}) {
		p, err := plan.Parse(c.plan)
		if err != nil {
			t.Fatal(err)
		}
		o, err := Execute(p, nil, Simulator{})
		if err != nil {
			t.Fatal(err)
		}
		var held int64
		for _, f := range o.Cand.Files {
			for _, e := range f.Entries {
				held += 8 * int64(e.Numel())
			}
		}
		o.Close()
		if rec := oracle.EstimateMemory(p).Records(); held < rec {
			t.Errorf("%s: the ranks trace %d float64 bytes, fewer than the %d the estimate counts", c.plan, held, rec)
		}
	}
}

// TestMemoryRefusal: above the limit Run and Execute refuse before running, naming the plan,
// the estimate and the limit's source.
func TestMemoryRefusal(t *testing.T) {
	p, err := plan.Parse("tp=2,hidden=32")
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("SPCHECK_MEMORY_LIMIT", "1K")
	var me *MemoryError
	if _, err := Execute(p, nil, Simulator{}); !errors.As(err, &me) || me.Reference != 0 || me.Simulator != SimulatorMemory(p) {
		t.Fatalf("Execute under 1 KiB: %v, want a *MemoryError for the simulator alone", err)
	}
	_, err = Run(p, nil, Simulator{}, Options{})
	if !errors.As(err, &me) || me.Reference != ReferenceMemory(p) {
		t.Fatalf("Run under 1 KiB: %v, want a *MemoryError counting the reference", err)
	}
	for _, part := range []string{"plan 'tp=2,hidden=32'", "SPCHECK_MEMORY_LIMIT", "reduce seq"} {
		if !strings.Contains(err.Error(), part) {
			t.Errorf("message lacks %q: %s", part, err)
		}
	}
	t.Setenv("SPCHECK_MEMORY_LIMIT", "1G")
	if _, err := Run(p, nil, Simulator{}, Options{}); err != nil {
		t.Errorf("under 1 GiB: %v", err)
	}
}
