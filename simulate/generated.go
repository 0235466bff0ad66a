package simulate

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spcheck/spcheck/model"
	"github.com/spcheck/spcheck/tensor"
)

// Generated describes a starting tensor that an executor generates itself from the counter RNG
// (tensor.NewRNG(seed, Name)) instead of reading it from a file: a shard of a full tensor of
// Shape, the rows [Start, Start+Len) of dim Dim, followed by Pad rows of zeros on dim 0 (the
// vocab padding of a vocab-parallel shard). Element flat of the full tensor (row-major) is
// Rule.Value(Normal(flat)) — model.InitValue's rule, so a shard holds exactly the values the
// oracle's full parameter has there.
type Generated struct {
	Name  string         `json:"name"`
	Shape []int          `json:"shape"`
	Dim   int            `json:"dim"`
	Start int            `json:"start"`
	Len   int            `json:"len"`
	Pad   int            `json:"pad,omitempty"`
	Rule  model.InitRule `json:"rule"`
}

// GeneratedDir holds one JSON manifest per rank (GeneratedFile) in an emitted plan directory.
const (
	GeneratedDir     = "generate"
	GeneratedFormat  = "spcheck-generate"
	GeneratedVersion = 1
)

// GeneratedFile is rank r's manifest file name.
func GeneratedFile(r int) string { return fmt.Sprintf("rank-%05d.json", r) }

// generatedManifest is the file: the rank's generated starting tensors by program symbol.
type generatedManifest struct {
	Format  string               `json:"format"`
	Version int                  `json:"version"`
	Tensors map[string]Generated `json:"tensors"`
}

// LocalShape is the shard's shape.
func (g Generated) LocalShape() []int {
	s := slices.Clone(g.Shape)
	s[g.Dim] = g.Len
	s[0] += g.Pad
	return s
}

// Validate reports a description that does not fit its shape.
func (g Generated) Validate() error {
	switch {
	case len(g.Shape) == 0 || slices.ContainsFunc(g.Shape, func(d int) bool { return d < 0 }):
		return fmt.Errorf("generated %s: bad shape %v", g.Name, g.Shape)
	case g.Dim < 0 || g.Dim >= len(g.Shape) || g.Start < 0 || g.Len < 0 || g.Start+g.Len > g.Shape[g.Dim]:
		return fmt.Errorf("generated %s: rows [%d, %d) of dim %d of %v", g.Name, g.Start, g.Start+g.Len, g.Dim, g.Shape)
	case g.Pad < 0 || (g.Pad > 0 && g.Dim != 0):
		return fmt.Errorf("generated %s: padding %d on a shard of dim %d", g.Name, g.Pad, g.Dim)
	case !g.Rule.Norm && g.Rule.FanIn < 1:
		return fmt.Errorf("generated %s: fan-in %d", g.Name, g.Rule.FanIn)
	}
	return nil
}

// cut is the shard of full (the whole generated tensor); full itself when the shard is all of it.
func (g Generated) cut(full *tensor.Dense) *tensor.Dense {
	t := full
	if g.Start != 0 || g.Len != g.Shape[g.Dim] {
		t = t.Narrow(g.Dim, g.Start, g.Len)
	}
	if g.Pad > 0 {
		t = t.Pad(0, 0, g.Pad, 0)
	}
	return t
}

// Tensor generates the shard's values for seed.
func (g Generated) Tensor(seed uint64) (*tensor.Dense, error) {
	if err := g.Validate(); err != nil {
		return nil, err
	}
	rng := tensor.NewRNG(seed, g.Name)
	local := g.LocalShape()
	out := tensor.New(local...)
	outer, inner := 1, 1
	for _, d := range g.Shape[:g.Dim] {
		outer *= d
	}
	for _, d := range g.Shape[g.Dim+1:] {
		inner *= d
	}
	i := 0
	for o := range outer {
		for r := range g.Len {
			base := (o*g.Shape[g.Dim] + g.Start + r) * inner
			for c := range inner {
				out.Data[i] = g.Rule.Value(rng.Normal(uint64(base + c)))
				i++
			}
		}
	}
	return out, nil // the padding rows (dim 0, after every generated row) stay zero
}

// writeGenerated writes rank r's manifest of the Generated symbols whose starting tensor was
// not replaced (by a bug variant) into dir/GeneratedDir; it returns those symbols.
func (c *Compiled) writeGenerated(dir string, r int) (map[string]bool, error) {
	m := generatedManifest{Format: GeneratedFormat, Version: GeneratedVersion, Tensors: map[string]Generated{}}
	if r < len(c.Generated) { // programs built by hand (bugs' worked examples) generate nothing
		for sym, g := range c.Generated[r] {
			if t := c.Init[r][sym]; t == nil || t == c.genInit[r][sym] {
				m.Tensors[sym] = g
			}
		}
	}
	js, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, GeneratedDir, GeneratedFile(r)), append(js, '\n'), 0o644); err != nil {
		return nil, err
	}
	done := map[string]bool{}
	for sym := range m.Tensors {
		done[sym] = true
	}
	return done, nil
}

// readGenerated reads rank r's manifest (none: an emitted plan without one) and generates its
// tensors for seed.
func readGenerated(dir string, r int, seed uint64) (map[string]*tensor.Dense, error) {
	path := filepath.Join(dir, GeneratedDir, GeneratedFile(r))
	js, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m generatedManifest
	if err := json.Unmarshal(js, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if m.Format != GeneratedFormat || m.Version != GeneratedVersion {
		return nil, fmt.Errorf("%s: format %q version %d, want %q version %d", path, m.Format, m.Version, GeneratedFormat, GeneratedVersion)
	}
	out := map[string]*tensor.Dense{}
	for sym, g := range m.Tensors {
		if out[sym], err = g.Tensor(seed); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", path, sym, err)
		}
	}
	return out, nil
}
