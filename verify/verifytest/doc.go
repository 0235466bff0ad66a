// Package verifytest builds traces in memory for tests of the verifier and of its callers: a
// rank-by-rank builder, and hand-worked scenarios of upstream bugs (PaddleFleet#589, SP norm
// grads, vLLM #33322, Megatron-LM 06e9f28b30) as reference/candidate pairs.
package verifytest
