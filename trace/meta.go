package trace

import (
	"fmt"
	"slices"
	"strings"
)

// Format and Version identify the metadata document; a reader refuses other versions.
const (
	Format  = "spcheck-trace"
	Version = 1
	// MetadataKey is the __metadata__ key holding the JSON document.
	MetadataKey = "spcheck"
)

// Kind is what a traced tensor is.
type Kind string

const (
	Input          Kind = "input"
	Activation     Kind = "activation"
	ActivationGrad Kind = "activation_grad"
	Param          Kind = "param"
	ParamGrad      Kind = "param_grad"
	Loss           Kind = "loss"
	Output         Kind = "output" // emitted tokens of a serving loop
)

// Kinds lists every valid kind.
var Kinds = []Kind{Input, Activation, ActivationGrad, Param, ParamGrad, Loss, Output}

// Mesh names the axes of the device mesh and their sizes, outermost first (e.g. dp, pp, tp).
// Virtual axes (e.g. "mb" for micro-batches) may be listed too; their coordinate is given per
// tensor, since one rank holds several micro-batches.
type Mesh struct {
	Axes  []string `json:"axes"`
	Shape []int    `json:"shape"`
}

// Size returns the size of axis (1 for an axis the mesh does not have).
func (m Mesh) Size(axis string) int {
	if i := slices.Index(m.Axes, axis); i >= 0 {
		return m.Shape[i]
	}
	return 1
}

func (m Mesh) String() string {
	parts := make([]string, len(m.Axes))
	for i, a := range m.Axes {
		parts[i] = fmt.Sprintf("%s=%d", a, m.Shape[i])
	}
	return strings.Join(parts, ",")
}

// TensorMeta is the per-tensor metadata.
type TensorMeta struct {
	Name  string         `json:"name"`            // logical name, equal across ranks and traces
	Kind  Kind           `json:"kind"`            // input, activation, …
	Order int            `json:"order"`           // execution order (forward then backward)
	Place string         `json:"place,omitempty"` // placement grammar, e.g. "tp=shard(0)"
	Shape []int          `json:"shape,omitempty"` // global (logical) shape, if known
	Coord map[string]int `json:"coord,omitempty"` // coordinates on per-tensor axes (e.g. mb)
	// Reduce, optional, is the reduction length of the op that produced the tensor (the
	// contraction length of a GEMM: hidden, ffn, tokens, vocab). Without a noise reference the
	// verifier's low-precision tolerance grows with it (fp32 accumulation error grows as √n).
	Reduce int `json:"reduce,omitempty"`
	// Fingerprint, when set, says the tensor is stored as a fingerprint record instead of its
	// data (fingerprint.go, docs/trace-format.md "Fingerprints").
	Fingerprint *FingerprintMeta `json:"fingerprint,omitempty"`
}

// Meta is the file-level metadata document.
type Meta struct {
	Format   string         `json:"format"`
	Version  int            `json:"version"`
	Rank     int            `json:"rank"`
	World    int            `json:"world"`
	Mesh     Mesh           `json:"mesh"`
	Coord    map[string]int `json:"coord,omitempty"`
	Producer string         `json:"producer,omitempty"` // oracle, simulate, cuda, torch, …
	// ProducerVersion is the version of the program that wrote the file: spcheck's oracle and
	// simulator record buildinfo.Version, a framework dumper may record its own.
	ProducerVersion string                `json:"producer_version,omitempty"`
	Plan            string                `json:"plan,omitempty"` // plan string that reproduces it
	Seed            uint64                `json:"seed,omitempty"`
	Extra           map[string]string     `json:"extra,omitempty"` // device, driver, versions, …
	Tensors         map[string]TensorMeta `json:"tensors"`
}

// maxAxes and maxAxisSize bound what a sane mesh can claim.
const (
	maxAxes     = 16
	maxAxisSize = 1 << 20
)

// validate checks the file-level fields.
func (m *Meta) validate() error {
	if m.Format != Format {
		return fieldErr("format", "is %q, want %q", m.Format, Format)
	}
	if m.Version != Version && m.Version != FingerprintVersion {
		return fieldErr("version", "is %d, this reader knows %d and %d (with fingerprints)", m.Version, Version, FingerprintVersion)
	}
	if m.World < 1 || m.World > maxAxisSize {
		return fieldErr("world", "is %d", m.World)
	}
	if m.Rank < 0 || m.Rank >= m.World {
		return fieldErr("rank", "is %d, outside world %d", m.Rank, m.World)
	}
	if err := m.Mesh.validate(); err != nil {
		return err
	}
	for axis, c := range m.Coord {
		if !slices.Contains(m.Mesh.Axes, axis) {
			return fieldErr("coord", "names axis %q that the mesh %v lacks", axis, m.Mesh.Axes)
		}
		if c < 0 || c >= m.Mesh.Size(axis) {
			return fieldErr("coord", "%s=%d outside the axis size %d", axis, c, m.Mesh.Size(axis))
		}
	}
	return nil
}

func (m Mesh) validate() error {
	if len(m.Axes) != len(m.Shape) || len(m.Axes) > maxAxes {
		return fieldErr("mesh", "has %d axes and %d sizes", len(m.Axes), len(m.Shape))
	}
	for i, a := range m.Axes {
		if !validAxisName(a) || slices.Index(m.Axes, a) != i {
			return fieldErr("mesh", "axis %q is not a valid, unique name", a)
		}
		if m.Shape[i] < 1 || m.Shape[i] > maxAxisSize {
			return fieldErr("mesh", "axis %s has size %d", a, m.Shape[i])
		}
	}
	return nil
}

// validate checks one tensor's metadata against the mesh and the tensor's local shape.
func (t TensorMeta) validate(mesh Mesh, local []int) (Placement, error) {
	if t.Name == "" {
		return nil, fieldErr("name", "is empty")
	}
	if !slices.Contains(Kinds, t.Kind) {
		return nil, fieldErr("kind", "is %q (want one of %v)", t.Kind, Kinds)
	}
	if t.Order < 0 {
		return nil, fieldErr("order", "is %d", t.Order)
	}
	p, err := ParsePlacement(t.Place)
	if err != nil {
		return nil, fieldErr("place", "%v", err)
	}
	for _, a := range p {
		if !slices.Contains(mesh.Axes, a.Axis) {
			return nil, fieldErr("place", "names axis %q that the mesh %v lacks", a.Axis, mesh.Axes)
		}
		if a.Kind == Shard && a.Dim >= len(local) {
			return nil, fieldErr("place", "shards dim %d of a rank-%d tensor", a.Dim, len(local))
		}
	}
	if t.Shape != nil {
		if err := t.validateGlobalShape(mesh, p, local); err != nil {
			return nil, err
		}
	}
	for axis, c := range t.Coord {
		if !slices.Contains(mesh.Axes, axis) || c < 0 || c >= mesh.Size(axis) {
			return nil, fieldErr("coord", "%s=%d is not a coordinate of mesh %v", axis, c, mesh)
		}
	}
	return p, nil
}

// validateGlobalShape checks that the local shape is what the placement makes of the global
// shape (allowing padded shards).
func (t TensorMeta) validateGlobalShape(mesh Mesh, p Placement, local []int) error {
	if len(t.Shape) != len(local) {
		return fieldErr("shape", "global shape %v and local shape %v differ in rank", t.Shape, local)
	}
	for d, g := range t.Shape {
		if g < 0 {
			return fieldErr("shape", "negative dim in %v", t.Shape)
		}
		parts, block, segmented := 1, 0, false
		for _, a := range p {
			if a.Kind == Shard && a.Dim == d {
				parts *= mesh.Size(a.Axis)
				block = a.Block
				segmented = segmented || len(a.Segments) > 0
			}
		}
		maxLocal := (g + parts - 1) / parts
		switch {
		case block > 0:
			maxLocal = block
		case segmented: // each segment rounds up on its own; the verifier checks the exact runs
			maxLocal = g
		}
		if local[d] > maxLocal || (parts == 1 && local[d] != g) {
			return fieldErr("shape", "local dim %d is %d, but global %v split %d ways holds at most %d", d, local[d], t.Shape, parts, maxLocal)
		}
	}
	return nil
}
