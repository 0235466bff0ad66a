// executor.cuh: the interpreter of one rank's program on its GPU. Each op of simulate/ir runs
// as its CUDA kernel, cuBLAS GEMM or NCCL collective, with the semantics of simulate/runtime
// (the simulator's CPU executor):
//
//   - tensors are stored in the plan's dtype (fp32, bf16 with fp32 accumulation inside every
//     kernel, or fp64 throughout: the GPU reference); row statistics of RMSNorm, attention and
//     the cross-entropy are fp32 (fp64 in fp64); token ids, labels and other integer inputs are
//     int32;
//   - parameter shards described by the plan's generate manifest are generated on the GPU from
//     the counter RNG (kern::generate); the other starting tensors come from the init file;
//   - collectives: all_reduce (sum, max), all_gather and reduce_scatter on any dim (NCCL works
//     on flat buffers; other dims are laid out by a copy before or after), broadcast (the root
//     first broadcasts the shape), all_gather_flat (Paddle's partial-P2P gather of flat
//     chunks); p2p batches are one NCCL group; all over the communicators of the CommPlan;
//   - trace ops download the tensor and record it like the simulator: inputs as I64, the rest
//     in the plan's dtype; with ExecConfig::dump only the tensors whose logical name matches
//     one of its glob patterns (fnmatch) are recorded.
#pragma once

#include "../host/emit.hpp"
#include "../host/safetensors.hpp"
#include "../host/trace.hpp"
#include "comm.cuh"

namespace spx {

struct ExecConfig {
  DType dtype = DType::F32;  // compute/storage dtype: F32, BF16 or F64
  EmitInfo info;
  std::map<std::string, std::string> extra;  // Meta.Extra of every trace file
  bool dump_all = true;                       // record every traced tensor
  std::vector<std::string> dump;              // else: only logical names matching one of these globs
  int repeat = 1;  // run the program this many times (timing); only the last run records its trace
  bool profile = false;  // time every op with CUDA events in one run (ExecTimes::profile)
  std::string spill_dir = "/tmp";  // traced tensors stream to a spill file here (the trace's directory: same filesystem)
};

// ExecTimes are one rank's wall times in seconds, each ending in a stream sync.
struct ExecTimes {
  double setup = 0;      // starting tensors: generated on the GPU and read from the init file
  double best_run = 0;   // fastest run of the program without trace downloads (repeat > 1), else the traced run
  double traced_run = 0; // the last run, trace downloads included
  double trace = 0;      // of which: downloading and recording traced tensors
  size_t trace_bytes = 0;
  int traced = 0, skipped = 0;  // trace ops recorded and left out by the dump filter
  // profile: GPU time per op kind in the profiled run (the last untraced one, else the traced
  // one), largest first: "op count ms" lines.
  std::string profile;
};

// execute_rank runs p on g and returns the rank's trace writer (written by the caller); gen
// describes the starting tensors generated on the GPU (load_generated).
TraceWriter execute_rank(const Gpu& g, RankComms& comms, const Program& p, const StFile& init,
                         const std::map<std::string, GenTensor>& gen, const ExecConfig& cfg, ExecTimes* times);


// device_facts describes the GPU, driver and libraries for Meta.Extra.
std::map<std::string, std::string> device_facts(int device);

}  // namespace spx
