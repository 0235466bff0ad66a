// Package bugs is spcheck's catalogue of real distributed-parallel bugs (seed-bugs.md): each
// entry names a bug, where it came from, its class (C1–C7 of seed-bugs.md §0), the minimal plan
// it shows on, the rewrite that injects it, and the diagnosis spcheck must give — the verdict
// and tensor of the first divergence, its signature (every receiver holding the same
// frankentensor, TP rank 0 right and the others wrong, ×tp, a replica mismatch, wrong valid
// MTP positions, …) and the document's exact numbers.
//
// Training bugs are rewrites of the per-rank programs (and, where the bug lives in the data a
// rank starts from, of its starting tensors), registered in init as simulate variants, so the
// simulator, the GPUs (cuda/ runs the same programs) and the fuzzer (simulate.Variants) all see
// them; Run executes one on a plan, compares it with the oracle and classifies the outcome.
// Serving bugs switch the variants of package serving's decode loop. Worked examples (Examples)
// rerun the documents' own numbers — seed 001's table (§1.4), vLLM's residual rows (§2.3, §2.4),
// the norm-grad partials (§1.8), the eh_proj adjoint (§4.7), the §3.2 gate table and the §3.3
// launch counts — on tiny hand-written programs or configs, through the same rewrites.
//
// Gate is `spcheck check`: correct plans that must verify, every bug detected with its expected
// diagnosis, every bug's fixed form verifying clean on the same plan, every worked example's
// numbers; it renders as text, Markdown, JSON and JUnit for CI.
package bugs
