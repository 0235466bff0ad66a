// emit.hpp: reading a plan emitted by `spcheck plan --emit DIR` (simulate/emit.go):
//
//   DIR/programs/rank-00000.json        rank 0's program (simulate/ir, JSON)
//   DIR/generate/rank-00000.json        rank 0's parameter shards, described (simulate.Generated):
//                                       the executor generates them on its GPU from the counter RNG
//   DIR/init/rank-00000.safetensors     the other symbols rank 0 starts from (micro-batch inputs,
//                                       tensors a bug variant replaced), float64, as a trace file
//
// The plan string (in every program) gives the dtype. The trace mesh is the program mesh plus
// the virtual axes the trace tags use (mb, the micro-batch axis), inserted before the innermost
// real axis as the simulator's trace mesh has them (simulate/layout.go: dp, pp, mb, tp), each
// sized by the largest coordinate any rank's tags give it.
#pragma once

#include <cstdint>
#include <map>
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

// GenTensor is one generated starting tensor (simulate.Generated): the rows [start, start+len) of
// dim `dim` of a full tensor of `shape`, then `pad` zero rows on dim 0. Element flat of the full
// tensor (row-major) is rngcore::init_value(norm, std, fan_in, RNG(seed, name).normal(flat)).
struct GenTensor {
  std::string name;
  std::vector<int64_t> shape;
  int dim = 0;
  int64_t start = 0, len = 0, pad = 0;
  bool norm = false;
  double std_ = 0;
  int64_t fan_in = 0;
  std::vector<int64_t> local_shape() const;
};

struct Emitted {
  std::string dir;
  EmitInfo info;
  std::vector<Program> programs;  // by rank
  std::string init_path(int rank) const;
  std::string generated_path(int rank) const;
};

// load_generated reads rank's manifest of generated tensors by symbol (empty when the plan was
// emitted without one); errors name the file and symbol.
std::map<std::string, GenTensor> load_generated(const Emitted& e, int rank);
// generate_host computes a generated tensor's values on the host (the GPU's reference).
std::vector<double> generate_host(const GenTensor& g, uint64_t seed);

// load_emit reads every rank's program and rank 0's init metadata (each rank reads its own
// init file when it starts).
Emitted load_emit(const std::string& dir);
std::string program_path(const std::string& dir, int rank);
// plan_value returns key's value in a plan string ("tp=2,dtype=bf16,…"), or "" when absent.
std::string plan_value(const std::string& plan, const std::string& key);
// trace_mesh computes the trace mesh of a set of programs (see above).
void trace_mesh(const std::vector<Program>& progs, std::vector<std::string>* axes, std::vector<int64_t>* shape);

}  // namespace spx
