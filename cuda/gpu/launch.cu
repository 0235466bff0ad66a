#include "launch.cuh"

#include <chrono>
#include <cstdlib>
#include <thread>

#include "check.cuh"

namespace spx {

int visible_gpus() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();
    return 0;
  }
  return n;
}

void keep_multicast_off() { setenv("NCCL_NVLS_ENABLE", "0", 0); }

static RankResult run_rank(const CommPlan& plan, int rank, int device, IdSource& ids, double timeout_s, AbortFlag* abort,
                           const RankFn& fn) {
  RankResult res{rank, false, "", 0};
  ContextScope ctx("rank " + std::to_string(rank));
  Gpu g;
  try {
    g.init(rank, device);
    RankComms comms(g, plan, ids, timeout_s, abort);
    comms.init();
    auto t0 = std::chrono::steady_clock::now();
    fn(g, comms);
    g.sync();
    res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    comms.finish();
    res.ok = true;
  } catch (const std::exception& e) {
    res.error = e.what();
    if (abort) abort->raise(cat("rank ", rank, ": ", e.what()));
  }
  g.destroy();
  return res;
}

std::vector<RankResult> run_threads(const CommPlan& plan, double timeout_s, const RankFn& fn) {
  keep_multicast_off();
  MemoryIds ids;
  AbortFlag abort;
  std::vector<RankResult> results(plan.world);
  std::vector<std::thread> threads;
  for (int r = 0; r < plan.world; r++)
    threads.emplace_back([&, r] { results[r] = run_rank(plan, r, plan.device[r], ids, timeout_s, &abort, fn); });
  for (auto& t : threads) t.join();
  return results;
}

RankResult run_process(const CommPlan& plan, int rank, int device, const std::string& id_base, double timeout_s, const RankFn& fn) {
  keep_multicast_off();
  FileIds ids(id_base);
  return run_rank(plan, rank, device, ids, timeout_s, nullptr, fn);
}

}  // namespace spx
