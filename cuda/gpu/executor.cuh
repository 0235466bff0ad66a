// executor.cuh: the interpreter of one rank's program on its GPU. Each op of simulate/ir runs
// as its CUDA kernel, cuBLAS GEMM or NCCL collective, with the semantics of simulate/runtime
// (the simulator's CPU executor):
//
//   - tensors are stored in the plan's dtype (fp32, or bf16 with fp32 accumulation inside every
//     kernel); row statistics of RMSNorm, attention and the cross-entropy are fp32; token ids,
//     labels and other integer inputs are int32;
//   - collectives: all_reduce (sum, max), all_gather and reduce_scatter on any dim (NCCL works
//     on flat buffers; other dims are laid out by a copy before or after), broadcast (the root
//     first broadcasts the shape), all_gather_flat (Paddle's partial-P2P gather of flat
//     chunks); p2p batches are one NCCL group; all over the communicators of the CommPlan;
//   - trace ops download the tensor and record it like the simulator: inputs as I64, the rest
//     in the plan's dtype.
#pragma once

#include "../host/emit.hpp"
#include "../host/safetensors.hpp"
#include "../host/trace.hpp"
#include "comm.cuh"

namespace spx {

struct ExecConfig {
  DType dtype = DType::F32;  // compute/storage dtype: F32 or BF16
  EmitInfo info;
  std::map<std::string, std::string> extra;  // Meta.Extra of every trace file
};

// execute_rank runs p on g and returns the rank's trace writer (rendered by the caller).
TraceWriter execute_rank(const Gpu& g, RankComms& comms, const Program& p, const StFile& init, const ExecConfig& cfg);

// device_facts describes the GPU, driver and libraries for Meta.Extra.
std::map<std::string, std::string> device_facts(int device);

}  // namespace spx
