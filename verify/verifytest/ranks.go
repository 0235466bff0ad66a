package verifytest

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spcheck/spcheck/tensor"
	"github.com/spcheck/spcheck/trace"
)

// Ranks builds one trace rank by rank.
type Ranks struct {
	Name  string
	metas []trace.Meta
	adds  [][]added
	dump  *trace.Dump
}

type added struct {
	key string
	tm  trace.TensorMeta
	dt  tensor.DType
	t   *tensor.Dense
}

// Provenance is what a trace says about who made it.
type Provenance struct {
	Producer string
	Plan     string
	Seed     uint64
}

// New starts a trace of world ranks on mesh. When the mesh's sizes multiply to world, each rank
// gets its row-major coordinates; otherwise set them with SetCoord.
func New(name string, mesh trace.Mesh, world int, prov Provenance) *Ranks {
	r := &Ranks{Name: name, metas: make([]trace.Meta, world), adds: make([][]added, world)}
	strides := tensor.Strides(mesh.Shape)
	derive := tensor.Numel(mesh.Shape) == world
	for rank := range r.metas {
		m := trace.Meta{Rank: rank, World: world, Mesh: mesh, Producer: prov.Producer, Plan: prov.Plan, Seed: prov.Seed}
		if derive && len(mesh.Axes) > 0 {
			m.Coord = map[string]int{}
			for i, a := range mesh.Axes {
				m.Coord[a] = rank / strides[i] % mesh.Shape[i]
			}
		}
		r.metas[rank] = m
	}
	return r
}

// Single is a one-rank trace such as the oracle writes.
func Single(name string, prov Provenance) *Ranks {
	return New(name, trace.Mesh{Axes: []string{}, Shape: []int{}}, 1, prov)
}

// TP is a trace of tp ranks on a one-axis mesh "tp".
func TP(name string, tp int, prov Provenance) *Ranks {
	return New(name, trace.Mesh{Axes: []string{"tp"}, Shape: []int{tp}}, tp, prov)
}

// SetDump makes every rank store its tensors as d says (fingerprints; trace.Writer.SetDump).
func (r *Ranks) SetDump(d *trace.Dump) *Ranks {
	r.dump = d
	return r
}

// SetCoord sets a rank's file-level coordinates.
func (r *Ranks) SetCoord(rank int, coord map[string]int) *Ranks {
	r.metas[rank].Coord = coord
	return r
}

// Add stores a tensor of the given local shape and values on a rank.
func (r *Ranks) Add(rank int, key string, tm trace.TensorMeta, dt tensor.DType, shape []int, data ...float64) *Ranks {
	r.adds[rank] = append(r.adds[rank], added{key, tm, dt, tensor.FromData(shape, data)})
	return r
}

// AddAll stores the same tensor on every rank.
func (r *Ranks) AddAll(key string, tm trace.TensorMeta, dt tensor.DType, shape []int, data ...float64) *Ranks {
	for rank := range r.adds {
		r.Add(rank, key, tm, dt, shape, data...)
	}
	return r
}

// Files renders every rank file's bytes.
func (r *Ranks) Files() ([][]byte, error) {
	out := make([][]byte, len(r.metas))
	for rank, m := range r.metas {
		w := trace.NewWriter(m)
		w.SetDump(r.dump)
		for _, a := range r.adds[rank] {
			if err := w.Add(a.key, a.tm, a.dt, a.t); err != nil {
				return nil, err
			}
		}
		b, err := w.Bytes()
		if err != nil {
			return nil, err
		}
		out[rank] = b
	}
	return out, nil
}

// Trace reads the rendered files back as an in-memory trace, exactly as trace.OpenDir would.
func (r *Ranks) Trace() (*trace.Trace, error) {
	bs, err := r.Files()
	if err != nil {
		return nil, err
	}
	files := make([]*trace.File, len(bs))
	for rank, b := range bs {
		f, err := trace.Read(bytes.NewReader(b), int64(len(b)), fmt.Sprintf("%s/%s", r.Name, trace.FileName(rank)))
		if err != nil {
			return nil, err
		}
		files[rank] = f
	}
	return trace.New(r.Name, files)
}

// WriteDir writes the rank files into dir.
func (r *Ranks) WriteDir(dir string) error {
	bs, err := r.Files()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for rank, b := range bs {
		if err := os.WriteFile(filepath.Join(dir, trace.FileName(rank)), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Meta is a shorthand for a tensor's metadata.
func Meta(name string, kind trace.Kind, order int, place string, shape ...int) trace.TensorMeta {
	return trace.TensorMeta{Name: name, Kind: kind, Order: order, Place: place, Shape: shape}
}
