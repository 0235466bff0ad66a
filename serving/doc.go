// Package serving simulates the decode loop of a speculative-decoding (MTP) server under
// TP × DP (EP), after FastDeploy's GPU model runner, and checks it against a single-device
// greedy decoding of the same requests (FastDeploy fastdeploy/worker/gpu_model_runner.py and
// custom_ops/gpu_ops/speculate_decoding/speculate_save_output.cc, #7172).
//
// Every global rank r (TP rank r%TP, DP group r/TP) holds its own copy of its DP group's batch
// state. Each Step: the scheduler inserts arrivals and moves requests in and out of block steps;
// every rank launches seq_lens_this_time tokens per live request (1 verified + K drafts, or a
// request's FirstLaunch on its first step) and verifies the drafts against a deterministic
// target model (TargetToken, DraftToken), giving accept_tokens/accept_num; the TP root's outputs
// are broadcast to its TP group; the overlapped runner predicts the next launch's token count
// from this step (Prediction); the emission gate (Gate) decides which ranks send to their DP
// group's message queue; every rank updates its state.
//
// Checks, computed by Report: EmitOnce (per queue, every request's tokens exactly once and equal
// to GreedyTokens: duplicated ×n / lost / incomplete / wrong), ReplicaIdentity (before the
// broadcast each TP rank's state and outputs equal its root's), GateOnlyEmission (no rank skipped
// its state update because of the gate) and LaunchPrediction (each consumed prediction vs the
// actual launch; an under-prediction names the tokens pre_process would drop).
//
// Variants are plain values on Config (Gate, Predict, GateStateUpdates), so a bug catalogue
// switches them on and a fuzzer generates them. Everything is a pure function of the Config
// (and, for Sim, of the Insert/Step calls): same inputs, same bytes out.
package serving
