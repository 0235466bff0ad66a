package tensor

import (
	"fmt"
	"math"
	"slices"
)

// Dense is a contiguous row-major N-d tensor of float64 values. A zero-dim Dense (Shape == nil
// or empty) is a scalar holding one value.
type Dense struct {
	Shape []int
	Data  []float64
}

// ShapeError is the value a shape misuse panics with.
type ShapeError struct {
	Op  string
	Msg string
}

func (e *ShapeError) Error() string { return "tensor." + e.Op + ": " + e.Msg }

func shapePanic(op, format string, args ...any) {
	panic(&ShapeError{Op: op, Msg: fmt.Sprintf(format, args...)})
}

// Numel is the number of elements of a tensor of the given shape (1 for a scalar).
func Numel(shape []int) int {
	n := 1
	for _, d := range shape {
		n *= d
	}
	return n
}

// New returns a zero tensor of the given shape.
func New(shape ...int) *Dense {
	for _, d := range shape {
		if d < 0 {
			shapePanic("New", "negative dim in shape %v", shape)
		}
	}
	return &Dense{Shape: slices.Clone(shape), Data: make([]float64, Numel(shape))}
}

// FromData wraps data (not copied) as a tensor of the given shape.
func FromData(shape []int, data []float64) *Dense {
	if Numel(shape) != len(data) {
		shapePanic("FromData", "shape %v needs %d values, got %d", shape, Numel(shape), len(data))
	}
	return &Dense{Shape: slices.Clone(shape), Data: data}
}

// Scalar returns a zero-dim tensor holding v.
func Scalar(v float64) *Dense { return &Dense{Data: []float64{v}} }

// Numel is the number of elements.
func (t *Dense) Numel() int { return len(t.Data) }

// Rank is the number of dims.
func (t *Dense) Rank() int { return len(t.Shape) }

// Clone returns a deep copy.
func (t *Dense) Clone() *Dense {
	return &Dense{Shape: slices.Clone(t.Shape), Data: slices.Clone(t.Data)}
}

// Reshape returns a tensor sharing t's data with a new shape of the same element count.
func (t *Dense) Reshape(shape ...int) *Dense {
	if Numel(shape) != len(t.Data) {
		shapePanic("Reshape", "cannot reshape %v to %v", t.Shape, shape)
	}
	return &Dense{Shape: slices.Clone(shape), Data: t.Data}
}

// Strides are the row-major element strides of shape.
func Strides(shape []int) []int {
	st := make([]int, len(shape))
	s := 1
	for i := len(shape) - 1; i >= 0; i-- {
		st[i] = s
		s *= shape[i]
	}
	return st
}

// Offset is the flat index of the element at idx.
func (t *Dense) Offset(idx ...int) int {
	if len(idx) != len(t.Shape) {
		shapePanic("Offset", "index %v for shape %v", idx, t.Shape)
	}
	off := 0
	for i, v := range idx {
		if v < 0 || v >= t.Shape[i] {
			shapePanic("Offset", "index %v out of range for shape %v", idx, t.Shape)
		}
		off = off*t.Shape[i] + v
	}
	return off
}

// At returns the element at idx.
func (t *Dense) At(idx ...int) float64 { return t.Data[t.Offset(idx...)] }

// Set stores v at idx.
func (t *Dense) Set(v float64, idx ...int) { t.Data[t.Offset(idx...)] = v }

// SameShape reports whether a and b have identical shapes.
func SameShape(a, b []int) bool { return slices.Equal(a, b) }

// outerInner splits shape around dim: the product of the dims before it and after it.
func outerInner(shape []int, dim int) (outer, inner int) {
	return Numel(shape[:dim]), Numel(shape[dim+1:])
}

func checkDim(op string, shape []int, dim int) {
	if dim < 0 || dim >= len(shape) {
		shapePanic(op, "dim %d out of range for shape %v", dim, shape)
	}
}

// Narrow returns a copy of elements [start, start+length) of t along dim.
func (t *Dense) Narrow(dim, start, length int) *Dense {
	checkDim("Narrow", t.Shape, dim)
	if start < 0 || length < 0 || start+length > t.Shape[dim] {
		shapePanic("Narrow", "range [%d,%d) out of dim %d of shape %v", start, start+length, dim, t.Shape)
	}
	outer, inner := outerInner(t.Shape, dim)
	shape := slices.Clone(t.Shape)
	shape[dim] = length
	out := New(shape...)
	src, dst := t.Shape[dim]*inner, length*inner
	for o := 0; o < outer; o++ {
		copy(out.Data[o*dst:(o+1)*dst], t.Data[o*src+start*inner:o*src+(start+length)*inner])
	}
	return out
}

// Assign writes src into t at offset start along dim (the inverse of Narrow).
func (t *Dense) Assign(dim, start int, src *Dense) {
	checkDim("Assign", t.Shape, dim)
	if len(src.Shape) != len(t.Shape) || start < 0 || start+src.Shape[dim] > t.Shape[dim] {
		shapePanic("Assign", "cannot place %v at %d of dim %d of %v", src.Shape, start, dim, t.Shape)
	}
	for i := range t.Shape {
		if i != dim && t.Shape[i] != src.Shape[i] {
			shapePanic("Assign", "cannot place %v into %v along dim %d", src.Shape, t.Shape, dim)
		}
	}
	outer, inner := outerInner(t.Shape, dim)
	dstRow, srcRow := t.Shape[dim]*inner, src.Shape[dim]*inner
	for o := 0; o < outer; o++ {
		copy(t.Data[o*dstRow+start*inner:], src.Data[o*srcRow:(o+1)*srcRow])
	}
}

// Concat joins tensors along dim; all other dims must agree.
func Concat(dim int, ts ...*Dense) *Dense {
	if len(ts) == 0 {
		shapePanic("Concat", "no tensors")
	}
	checkDim("Concat", ts[0].Shape, dim)
	shape := slices.Clone(ts[0].Shape)
	shape[dim] = 0
	for _, x := range ts {
		if len(x.Shape) != len(shape) {
			shapePanic("Concat", "rank mismatch %v vs %v", x.Shape, ts[0].Shape)
		}
		shape[dim] += x.Shape[dim]
	}
	out := New(shape...)
	at := 0
	for _, x := range ts {
		out.Assign(dim, at, x)
		at += x.Shape[dim]
	}
	return out
}

// Split cuts t along dim into pieces of the given sizes, which must add up to t.Shape[dim].
func (t *Dense) Split(dim int, sizes ...int) []*Dense {
	checkDim("Split", t.Shape, dim)
	total := 0
	for _, s := range sizes {
		total += s
	}
	if total != t.Shape[dim] {
		shapePanic("Split", "sizes %v do not add up to dim %d of %v", sizes, dim, t.Shape)
	}
	out := make([]*Dense, len(sizes))
	at := 0
	for i, s := range sizes {
		out[i] = t.Narrow(dim, at, s)
		at += s
	}
	return out
}

// Chunk splits t along dim into n pieces with the even-split rule every sharded placement
// uses: ShardRange.
func (t *Dense) Chunk(dim, n int) []*Dense {
	checkDim("Chunk", t.Shape, dim)
	sizes := make([]int, n)
	for i := range sizes {
		lo, hi := ShardRange(t.Shape[dim], n, i)
		sizes[i] = hi - lo
	}
	return t.Split(dim, sizes...)
}

// ShardRange is the half-open range of a dim of size n held by shard i of parts: ceil-sized
// shards, the last ones shorter or empty. This is torch.chunk's rule and the one a padded
// shard (ceil(n/parts) rows, the tail padding) strips back to.
func ShardRange(n, parts, i int) (lo, hi int) {
	if parts <= 0 || i < 0 || i >= parts {
		shapePanic("ShardRange", "shard %d of %d", i, parts)
	}
	size := (n + parts - 1) / parts
	lo, hi = min(i*size, n), min((i+1)*size, n)
	return lo, hi
}

// Pad returns t extended along dim by before and after elements of value v.
func (t *Dense) Pad(dim, before, after int, v float64) *Dense {
	checkDim("Pad", t.Shape, dim)
	if before < 0 || after < 0 {
		shapePanic("Pad", "negative padding %d,%d", before, after)
	}
	shape := slices.Clone(t.Shape)
	shape[dim] += before + after
	out := New(shape...)
	if v != 0 {
		for i := range out.Data {
			out.Data[i] = v
		}
	}
	out.Assign(dim, before, t)
	return out
}

// Flatten returns a 1-d tensor sharing t's data.
func (t *Dense) Flatten() *Dense { return t.Reshape(len(t.Data)) }

// Scale returns c·t.
func (t *Dense) Scale(c float64) *Dense {
	out := t.Clone()
	for i := range out.Data {
		out.Data[i] *= c
	}
	return out
}

// AddInPlace adds u to t element-wise.
func (t *Dense) AddInPlace(u *Dense) {
	if !SameShape(t.Shape, u.Shape) {
		shapePanic("AddInPlace", "shapes %v and %v", t.Shape, u.Shape)
	}
	for i, v := range u.Data {
		t.Data[i] += v
	}
}

// BitEqual reports whether a and b have the same shape and bitwise-identical values.
func BitEqual(a, b *Dense) bool {
	if !SameShape(a.Shape, b.Shape) {
		return false
	}
	for i := range a.Data {
		if math.Float64bits(a.Data[i]) != math.Float64bits(b.Data[i]) {
			return false
		}
	}
	return true
}

// String abbreviates t for messages: its shape and its first few values.
func (t *Dense) String() string {
	const show = 8
	n := min(len(t.Data), show)
	s := fmt.Sprintf("%v%v", t.Shape, t.Data[:n])
	if len(t.Data) > show {
		s = s[:len(s)-1] + " …]"
	}
	return s
}
