// Package gputraces checks what the CUDA executor (cuda/) produced and consumes, from Go and
// without a GPU:
//
//   - the traces recorded on real GPUs under testdata/gpu/ are verified against the oracle with
//     the verifier, each with its expected verdict (clean for a correct plan, the right
//     diagnosis for a buggy one);
//   - the float64 reference runs recorded on a GPU (testdata/gpu/ref_*, ReferencePlan's plans)
//     equal the Go oracle within ReferenceRelTol on every tensor;
//   - the golden files the C++ tests read (cuda/tests/testdata/) are regenerated from the Go
//     sources of truth — tensor's RNG and bf16 rounding, trace's writer, nn's kernels — and must
//     equal the committed bytes, so the C++ ports are always tested against today's Go;
//   - the C++ host test binary (GPU-free: JSON, safetensors, trace writer, RNG, communicator
//     planning) is built with g++ and run when a C++ compiler is available.
//
// Regenerate the golden files with `go test ./cuda/gputraces -rewrite`.
package gputraces
