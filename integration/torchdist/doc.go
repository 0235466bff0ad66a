// Package torchdist checks spcheck against real torch.distributed runs: it runs the worked
// example python/examples/megatron_block.py (a Megatron-style TP × SP × PP MLP stack in plain
// torch.distributed, dumped with python/spcheck_dump) once single-process as the reference and
// as 4 gloo processes (tp 2 × pp 2) — correct, and with each of two real bugs switched in, with
// one and two micro-batches — then checks the traces on their own (orders, the bit-exact P2P,
// the frankentensor, the unreduced partial grads), the verifier's verdicts, first divergences
// and block tables (verify.Compare), and the spcheck binary's exit codes. It also runs the
// Python unit tests of spcheck_dump.
//
// It also verifies the traces the same example wrote on real GPUs with NCCL
// (testdata/torch-nccl/): those tests need no torch. The package has tests only; the gloo runs
// need Debian's python3-torch at /usr/bin/python3 and are skipped without it, unless
// SPCHECK_REQUIRE_TORCH=1 (CI sets it), which makes its absence a failure.
package torchdist
