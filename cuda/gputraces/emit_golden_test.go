package gputraces

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/spcheck/spcheck/plan"
	"github.com/spcheck/spcheck/simulate"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// emitGoldenPlan is a small TP + SP plan whose emitted programs the C++ host test parses,
// schedule-checks and corrupts (cuda/tests/host_test.cpp).
const emitGoldenPlan = "tp=2,sp=megatron,layers=1,mtp=0,dtype=fp32,hidden=8,heads=2,ffn=16,vocab=11,seq=4,batch=1"

// TestEmitGolden keeps cuda/tests/testdata/emit_tp2 equal to what `spcheck plan --emit` writes
// today, so the C++ parser is always tested against the current IR, and
// generated_golden.safetensors equal to the parameter shards Compile generates for it (key
// "rank<r>/<symbol>"), which the C++ host test generates from the manifests and compares.
func TestEmitGolden(t *testing.T) {
	p := plan.Default()
	if err := p.Apply(emitGoldenPlan); err != nil {
		t.Fatal(err)
	}
	full, err := simulate.Compile(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	w := trace.NewWriter(trace.Meta{Rank: 0, World: 1, Mesh: trace.Mesh{Axes: []string{}, Shape: []int{}}, Producer: "simulate", Seed: p.Seed})
	for r, gen := range full.Generated {
		for sym := range gen {
			key := fmt.Sprintf("rank%d/%s", r, sym)
			if err := w.Add(key, trace.TensorMeta{Name: key, Kind: trace.Param}, tensor.F64, full.Init[r][sym]); err != nil {
				t.Fatal(err)
			}
		}
	}
	b, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "generated_golden.safetensors", b)
	c, err := simulate.CompileGenerated(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := c.WriteDir(tmp); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(tmp, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(tmp, path)
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checkGolden(t, filepath.Join("emit_tp2", rel), b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
