// Package verify compares a candidate trace with a reference trace and explains every
// difference.
//
// The work has four steps, each in its own file:
//
//   - Layout (layout.go): from metadata alone, group every rank's entries into logical tensors,
//     give each stored piece its mesh coordinates (the tensor's own coord, then the file's, then
//     — when the mesh's axes multiply to the world size — the rank's row-major position) and
//     check that the pieces tile the global tensor exactly as the placement says: every
//     sharded, partial and replicated coordinate held, no coordinate claimed twice, local shapes
//     equal to what the placement makes of the global shape. Problems are *trace.Error values
//     naming the file, rank, tensor and field (the CLI's exit 2).
//   - Assembly (assemble.go): rebuild each logical tensor's canonical bytes: shards are placed
//     (outermost axis first, padding stripped), partial summands summed, and every copy that
//     should agree (replicated and stage axes) is checked; copies that disagree beyond the
//     tolerance give the verdict replica mismatch, naming the ranks of each group of agreeing
//     copies.
//   - Comparison (compare.go, metrics.go): per logical tensor, MD5s of both sides, max abs and
//     rel error, normwise RMS rel error, the count of elements outside tolerance and the worst
//     error in units of the tolerance, and a Verdict. Tensors are ordered by execution order;
//     the earliest failures are the root (the first divergence), later ones consequences.
//   - Diagnosis (diagnose.go): for a failing tensor, each candidate rank's local piece is split
//     into blocks (whole shards, or flat 1/tp chunks — the unit of Paddle's partial P2P) and
//     matched against every reference block: correct, misplaced, duplicated, scaled (×c,
//     named after a mesh axis when it is one) or garbage; reference blocks found nowhere are
//     lost. Rows of the table are ranks, as in PaddleFleet#589's hand-drawn one.
//   - Signature (signature.go): the shape of the divergence, worked out once from the diagnosis
//     and the full values, so every report and every caller (the catalogue included) reads the
//     same answer: identical receivers (every piece holds the same data though the reference
//     pieces differ, blocks lost), scaled by one factor (named after a mesh axis or a plan
//     quantity of the trace's plan string), TP rank 0 right and the others wrong (typed mesh
//     coordinates, Coord), wrong at some sequence positions only, a replica mismatch, or
//     diverged without a finer structure; and whether the whole tensor is a multiple of its
//     reference.
//
// Tolerances (tolerance.go) are named per-dtype constants scaled by the reduction depth where
// the caller knows it. Compare reads every byte of both traces once, processes logical tensors
// in parallel only when there is enough work, and holds at most a few logical tensors in memory
// at a time. Results do not depend on GOMAXPROCS.
package verify
