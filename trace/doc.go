// Package trace reads and writes spcheck traces: one safetensors file per rank whose
// __metadata__ carries, under the key "spcheck", a JSON document describing the rank (world
// size, mesh axes, coordinates, producer, plan) and every tensor (logical name, kind, execution
// order, placement per mesh axis, global shape). The format is specified in
// docs/trace-format.md so that any framework can write it with nothing but JSON and raw bytes.
//
// The reader works over io.ReaderAt, validates the whole header before allocating anything for
// tensor data (header length against file size, dtypes, shapes against byte lengths, offsets in
// range and not overlapping, metadata sane) and then reads one tensor at a time, so its memory is
// bounded by the largest tensor, never by a length field a damaged file claims.
package trace
