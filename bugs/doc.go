// Package bugs is spcheck's catalogue of real distributed-parallel bugs found in Paddle,
// PaddleFleet, Megatron-LM, vLLM, FastDeploy and ms-swift: each entry names a bug, the upstream
// PR or commit it came from, its class (C1–C7, see Class), the minimal plan
// it shows on, the rewrite that injects it, and the diagnosis spcheck must give — the verdict
// and tensor of the first divergence, its signature (every receiver holding the same
// frankentensor, TP rank 0 right and the others wrong, ×tp, a replica mismatch, wrong valid
// MTP positions, …) and the exact numbers worked out by hand for it.
//
// Training bugs are rewrites of the per-rank programs (and, where the bug lives in the data a
// rank starts from, of its starting tensors). Callers resolve a plan's bug key with VariantOf and
// pass the variant to the simulator (simulate.Compile), the GPUs (cuda/ runs the same programs)
// and the fuzzer (Variants); there is no registry. Run executes a bug on a plan through package
// pipeline and checks the verifier's first divergence and signature (computed by package verify
// for any comparison) against the bug's expectation.
// Serving bugs switch the variants of package serving's decode loop. Worked examples (Examples)
// rerun small hand-worked cases of the upstream bugs — the table of PaddleFleet#589's discussion,
// vLLM's residual rows (#33322, #24021), the SP norm-grad partials, the eh_proj adjoint
// (Megatron-LM 06e9f28b30), FastDeploy #7172's gate table and launch counts — on tiny
// hand-written programs or configs, through the same rewrites.
//
// Gate is `spcheck check`: correct plans that must verify, every bug detected with its expected
// diagnosis, every bug's fixed form verifying clean on the same plan, every worked example's
// numbers; it renders as text, Markdown, JSON and JUnit for CI.
package bugs
