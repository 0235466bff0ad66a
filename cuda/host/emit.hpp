// emit.hpp: reading a plan emitted by `spcheck plan --emit DIR` (simulate/emit.go):
//
//   DIR/programs/rank-00000.json        rank 0's program (simulate/ir, JSON)
//   DIR/init/rank-00000.safetensors     the symbols rank 0 starts from (parameter shards and
//                                       micro-batch inputs), float64, as a trace file
//
// The plan string (in every program) gives the dtype. The trace mesh is the program mesh plus
// the virtual axes the trace tags use (mb, the micro-batch axis), inserted before the innermost
// real axis as the simulator's trace mesh has them (simulate/layout.go: dp, pp, mb, tp), each
// sized by the largest coordinate any rank's tags give it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dtype.hpp"
#include "program.hpp"

namespace spx {

struct EmitInfo {
  std::string plan;
  uint64_t seed = 0;
  DType dtype = DType::F64;
  int world = 0;
  std::vector<std::string> trace_axes;
  std::vector<int64_t> trace_shape;
};

struct Emitted {
  std::string dir;
  EmitInfo info;
  std::vector<Program> programs;  // by rank
  std::string init_path(int rank) const;
};

// load_emit reads every rank's program and rank 0's init metadata (each rank reads its own
// init file when it starts).
Emitted load_emit(const std::string& dir);
std::string program_path(const std::string& dir, int rank);
// plan_value returns key's value in a plan string ("tp=2,dtype=bf16,…"), or "" when absent.
std::string plan_value(const std::string& plan, const std::string& key);
// trace_mesh computes the trace mesh of a set of programs (see above).
void trace_mesh(const std::vector<Program>& progs, std::vector<std::string>* axes, std::vector<int64_t>* shape);

}  // namespace spx
