// launch.cuh: the two launch modes. run_threads drives every rank of a plan from one process, a
// thread per rank, each thread on its plan device; run_process runs one rank in this process
// (under mpirun or any launcher), sharing NCCL ids through files. Either way each rank gets its
// Gpu and RankComms, and a rank's failure is returned as that rank's error message.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "comm.cuh"
#include "dtensor.cuh"

namespace spx {

using RankFn = std::function<void(Gpu&, RankComms&)>;

struct RankResult {
  int rank;
  bool ok;
  std::string error;
  double seconds;  // wall time of the rank's function (communicator setup excluded)
};

// run_threads runs fn for every rank of the plan on its own thread; returns one result per rank.
std::vector<RankResult> run_threads(const CommPlan& plan, double timeout_s, const RankFn& fn);
// run_process runs fn for one rank; ids travel through files next to id_base.
RankResult run_process(const CommPlan& plan, int rank, int device, const std::string& id_base, double timeout_s, const RankFn& fn);

// visible_gpus is the number of CUDA devices (0 when there is no driver or device).
int visible_gpus();

// keep_multicast_off sets NCCL_NVLS_ENABLE=0 unless the caller set it: NVLink multicast can put a
// shared host's GPUs out of service, so the executor never turns it on by itself.
void keep_multicast_off();

}  // namespace spx
