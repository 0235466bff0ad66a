// Package tensor provides the dense, row-major float64 tensors every other spcheck package
// computes with, the storage dtypes traces are written in (fp64, fp32, bf16, fp16) with exact
// round-to-nearest-even conversion, the canonical little-endian bytes of each dtype and their
// MD5, and a counter-based random number generator whose values depend only on (seed, tensor
// name, element index) so that any shard of a tensor can be generated without the whole.
//
// Conventions (after gonum): a caller that misuses shapes (concatenating tensors whose other
// dims differ, slicing past the end) gets a panic carrying a *ShapeError; problems in data read
// from outside are returned as errors by the packages that read them.
package tensor
