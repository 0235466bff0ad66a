package simulate

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/spcheck/spcheck/simulate/ir"
	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Layout of an emitted plan directory (docs/ir.md): per rank, one JSON program, one JSON
// manifest of the parameter shards the executor generates from the counter RNG (GeneratedDir:
// nothing of a model's size is written), and one safetensors file of the other starting tensors
// (inputs, and any tensor a bug variant replaced). The init directory is itself a valid trace
// directory, so `spcheck inspect DIR/init` lists what each rank reads from files.
const (
	ProgramsDir  = "programs"
	InitDir      = "init"
	InitProducer = "simulate-init"
)

// ProgramFile is rank r's program file name.
func ProgramFile(r int) string { return fmt.Sprintf("rank-%05d.json", r) }

// WriteDir writes every rank's program, the manifest of its generated parameter shards, and its
// other starting tensors (float64, exact) into dir.
func (c *Compiled) WriteDir(dir string) error {
	for _, sub := range []string{ProgramsDir, InitDir, GeneratedDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return err
		}
	}
	for r, prog := range c.Programs {
		js, err := prog.Marshal()
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, ProgramsDir, ProgramFile(r)), append(js, '\n'), 0o644); err != nil {
			return err
		}
		generated, err := c.writeGenerated(dir, r)
		if err != nil {
			return err
		}
		w := trace.NewWriter(trace.Meta{Rank: r, World: prog.World, Mesh: trace.Mesh{Axes: prog.Mesh.Axes, Shape: prog.Mesh.Shape},
			Coord: maps.Clone(prog.Coord), Producer: InitProducer, Plan: prog.Plan, Seed: c.Plan.Seed})
		for _, sym := range prog.Inputs {
			if generated[sym] {
				continue
			}
			kind := trace.Input
			if strings.HasPrefix(sym, "param/") {
				kind = trace.Param
			}
			if err := w.Add(sym, trace.TensorMeta{Name: sym, Kind: kind}, tensor.F64, c.Init[r][sym]); err != nil {
				return err
			}
		}
		if _, err := w.WriteDir(filepath.Join(dir, InitDir)); err != nil {
			return err
		}
	}
	return nil
}

// ReadDir reads an emitted plan directory back: every rank's validated program and starting
// tensors (the generated ones generated).
func ReadDir(dir string) ([]*ir.Program, []map[string]*tensor.Dense, error) {
	tr, err := trace.OpenDir(filepath.Join(dir, InitDir))
	if err != nil {
		return nil, nil, err
	}
	defer tr.Close()
	world := len(tr.Files)
	progs := make([]*ir.Program, world)
	init := make([]map[string]*tensor.Dense, world)
	for r, f := range tr.Files {
		path := filepath.Join(dir, ProgramsDir, ProgramFile(r))
		js, err := os.ReadFile(path)
		if err != nil {
			return nil, nil, err
		}
		if progs[r], err = ir.Unmarshal(js); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", path, err)
		}
		if progs[r].Rank != r || progs[r].World != world {
			return nil, nil, fmt.Errorf("%s: program of rank %d of world %d, in a directory of %d ranks", path, progs[r].Rank, progs[r].World, world)
		}
		if init[r], err = readGenerated(dir, r, f.Meta.Seed); err != nil {
			return nil, nil, err
		}
		if init[r] == nil {
			init[r] = map[string]*tensor.Dense{}
		}
		for _, e := range f.Entries {
			if init[r][e.Key], err = f.Tensor(e); err != nil {
				return nil, nil, err
			}
		}
	}
	return progs, init, nil
}

// WriteTraceDir writes rendered rank trace files (TraceFiles) into dir.
func WriteTraceDir(dir string, files [][]byte) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for r, b := range files {
		if err := os.WriteFile(filepath.Join(dir, trace.FileName(r)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}
