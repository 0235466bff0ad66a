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
//     named after a mesh axis when it is one), slightly off (precision) or garbage; reference
//     blocks found nowhere are lost. Rows of the table are ranks, as in PaddleFleet#589's hand-drawn one.
//   - Explanation (diagnose_explain.go, diagnose_scale.go, diagnose_rows.go, diagnose_roots.go):
//     hypotheses tested in order against the full values, the first that holds named in one
//     sentence (Explanation.Sentence, what every report says first): non-finite values on either
//     side or both; copies that sum or average to the reference (unreduced partial results, over
//     the axes on which they differ); a constant factor, exact when a simple rational, per piece,
//     per micro-batch or per sample, named after a plan quantity only when unambiguous;
//     the reference's rows along any dim at other positions (each slice looked up by its bits,
//     then among the reference slices of nearby sum — sorted, a bounded probe — so matching is
//     near-linear, never all pairs), shifts, rotations, reversals and duplicates named, what no
//     rank holds lost; a transposed block; the pieces read under another shard dim; the overlap
//     of a shape mismatch (padding, truncation, a reshape); precision (a few tolerances, a factor
//     near 1, one rank's larger error); garbage only when nothing holds. A later failure is a
//     consequence only if it can depend on a root (inputs, parameters and anything after a
//     parameter gradient cannot) and shows no structural mechanism of its own; otherwise it is
//     an independent root (Role Independent), diagnosed and listed by Report.Roots.
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
