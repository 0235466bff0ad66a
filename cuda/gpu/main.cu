// spexec runs the per-rank programs of an emitted plan (see host/emit.hpp) on GPUs with NCCL
// and writes one trace file per rank, in the simulator's format.
//
//   spexec --emit DIR --out TRACE_DIR [--gpus N] [--timeout SECONDS] [--no-precheck] [--extra K=V]...
//          [--dump GLOB]... [--repeat N] [--profile]
//       one process, a thread per rank, ranks placed on the N visible GPUs (several ranks per
//       GPU when the world is larger; see host/commplan.hpp)
//   spexec --emit DIR --out TRACE_DIR --id-file PATH [--rank R] [--device D] [--gpus N] ...
//       one rank in this process (under mpirun, srun or any launcher): the rank comes from
//       --rank or the launcher's environment (OMPI_COMM_WORLD_RANK, PMI_RANK, SLURM_PROCID), the
//       device from --device or the local rank; NCCL ids are shared through files PATH.*,
//       which must not exist yet (cuda/run-mpi.sh removes them)
//
// Parameters the plan's generate manifest describes are generated on each rank's GPU. A plan of
// dtype fp64 runs in fp64 throughout (the GPU reference). --dump records only the traced tensors
// whose logical name matches one of the globs (--dump none: nothing; repeatable), --repeat runs
// the programs N times and reports the fastest run without trace downloads (timing), --profile
// times every op with CUDA events in one run and prints the GPU time per op kind.
//
// Exit status: 0 every rank finished and wrote its trace; 1 a rank failed (each failure is
// printed with its rank and op); 2 bad usage or bad input.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <string>

#include "../host/schedule.hpp"
#include "check.cuh"
#include "executor.cuh"
#include "launch.cuh"

using namespace spx;

namespace {

struct Args {
  std::string emit, out, id_file;
  int gpus = 0, rank = -1, device = -1;
  double timeout = 120;
  bool precheck = true;
  bool dump_all = true;
  std::vector<std::string> dump;
  int repeat = 1;
  bool profile = false;
  std::map<std::string, std::string> extra;
};

[[noreturn]] void usage(const std::string& msg) {
  std::fprintf(stderr, "spexec: %s\nusage: spexec --emit DIR --out TRACE_DIR [--gpus N] [--timeout S] [--no-precheck] [--extra K=V]... "
                       "[--dump GLOB]... [--repeat N] [--profile] [--id-file PATH [--rank R] [--device D]]\n", msg.c_str());
  std::exit(2);
}

int env_int(std::initializer_list<const char*> names) {
  for (const char* n : names)
    if (const char* v = std::getenv(n)) return std::atoi(v);
  return -1;
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; i++) {
    std::string k = argv[i];
    auto val = [&]() -> std::string {
      if (i + 1 >= argc) usage(k + " needs a value");
      return argv[++i];
    };
    if (k == "--emit") a.emit = val();
    else if (k == "--out") a.out = val();
    else if (k == "--gpus") a.gpus = std::atoi(val().c_str());
    else if (k == "--timeout") a.timeout = std::atof(val().c_str());
    else if (k == "--no-precheck") a.precheck = false;
    else if (k == "--dump") {
      a.dump_all = false;
      std::string gl = val();
      if (gl != "none") a.dump.push_back(gl);
    } else if (k == "--repeat") a.repeat = std::atoi(val().c_str());
    else if (k == "--profile") a.profile = true;
    else if (k == "--id-file") a.id_file = val();
    else if (k == "--rank") a.rank = std::atoi(val().c_str());
    else if (k == "--device") a.device = std::atoi(val().c_str());
    else if (k == "--extra") {
      std::string kv = val();
      size_t eq = kv.find('=');
      if (eq == std::string::npos) usage("--extra wants KEY=VALUE");
      a.extra[kv.substr(0, eq)] = kv.substr(eq + 1);
    } else usage("unknown argument " + k);
  }
  if (a.emit.empty() || a.out.empty()) usage("--emit and --out are required");
  if (a.timeout <= 0) usage("--timeout must be positive");
  if (a.repeat < 1) usage("--repeat must be ≥ 1");
  if (!a.id_file.empty() && a.rank < 0) a.rank = env_int({"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "SLURM_PROCID"});
  if (!a.id_file.empty() && a.rank < 0) usage("--id-file needs --rank or a launcher's rank variable");
  return a;
}

// driver_version reads the kernel module's version from /proc/driver/nvidia/version, whose first
// line reads e.g. "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.04  Release …":
// the first token made of digits and dots with at least one dot.
std::string driver_version() {
  std::ifstream f("/proc/driver/nvidia/version");
  std::string line, tok;
  if (!std::getline(f, line)) return "";
  size_t colon = line.find(':');
  std::istringstream words(colon == std::string::npos ? line : line.substr(colon + 1));
  while (words >> tok)
    if (tok.find('.') != std::string::npos && tok.find_first_not_of("0123456789.") == std::string::npos) return tok;
  return "";
}

CommPlan comm_plan(const Emitted& e, int gpus) {
  std::vector<GroupUse> groups;
  std::set<std::pair<int, int>> pairs;
  for (const Program& p : e.programs)
    for (const IrOp& o : p.ops) {
      if (o.has_group) groups.push_back({o.group.name, o.group.ranks});
      for (const IrTransfer& t : o.p2p) pairs.insert({std::min(p.rank, t.peer), std::max(p.rank, t.peer)});
    }
  return plan_comms(e.info.world, gpus, groups, std::vector<std::pair<int, int>>(pairs.begin(), pairs.end()));
}

}  // namespace

int main(int argc, char** argv) {
  Args a = parse_args(argc, argv);
  Emitted e;
  CommPlan plan;
  ExecConfig cfg;
  bool process_mode = !a.id_file.empty();
  try {
    e = load_emit(a.emit);
    if (e.info.dtype != DType::F32 && e.info.dtype != DType::BF16 && e.info.dtype != DType::F64)
      fail("plan dtype is ", dtype_name(e.info.dtype), ": the GPU executor computes in fp32, bf16 or fp64 (the GPU reference)");
    for (const Program& p : e.programs) (void)load_generated(e, p.rank);  // bad manifests are bad input, found before any GPU work
    if (a.precheck) check_schedule(e.programs);
    int visible = visible_gpus();
    int gpus = a.gpus > 0 ? a.gpus : (process_mode ? e.info.world : visible);
    if (!process_mode && gpus > visible) fail("--gpus ", gpus, " but ", visible, " GPUs are visible");
    if (gpus < 1) fail("no GPU visible");
    plan = comm_plan(e, gpus);
    if (process_mode && (a.rank < 0 || a.rank >= e.info.world)) fail("rank ", a.rank, " outside world ", e.info.world);
  } catch (const Error& err) {
    std::fprintf(stderr, "spexec: %s\n", err.what());
    return 2;
  }
  std::fprintf(stderr, "spexec: %s\n", plan.describe().c_str());
  cfg.dtype = e.info.dtype;
  cfg.info = e.info;
  cfg.extra = a.extra;
  cfg.extra["executor"] = "spexec (cuda/): CUDA kernels, cuBLAS, NCCL";
  cfg.extra["compute"] = e.info.dtype == DType::BF16  ? "bf16 storage, fp32 accumulation"
                         : e.info.dtype == DType::F64 ? "fp64 storage and accumulation (cuBLAS DGEMM)"
                                                      : "fp32 (no TF32)";
  cfg.dump_all = a.dump_all;
  cfg.dump = a.dump;
  cfg.repeat = a.repeat;
  cfg.spill_dir = a.out;
  cfg.profile = a.profile;
  cfg.extra["layout"] = plan.describe();
  cfg.extra["launch"] = process_mode ? "one process per rank" : "one process, a thread per rank";
  if (std::string d = driver_version(); !d.empty()) cfg.extra.emplace("driver", d);  // --extra driver=… wins
  std::string err_prefix;
  std::mutex print_mu;
  auto fn = [&](Gpu& g, RankComms& comms) {
    StFile init = StFile::read(e.init_path(g.rank));
    std::map<std::string, GenTensor> gen = load_generated(e, g.rank);
    ExecConfig mine = cfg;
    for (auto& kv : device_facts(g.device)) mine.extra[kv.first] = kv.second;
    ExecTimes t;
    TraceWriter w = execute_rank(g, comms, e.programs[g.rank], init, gen, mine, &t);
    auto w0 = std::chrono::steady_clock::now();
    w.write_dir(a.out);
    double write_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
    std::lock_guard<std::mutex> lock(print_mu);
    std::printf("spexec: rank %d: setup %.1f ms (%zu generated), run %.2f ms (%s), traced run %.1f ms of which trace ops %.1f ms "
                "(%d tensors, %.1f MB; %d left out), file %.1f ms\n",
                g.rank, 1e3 * t.setup, gen.size(), 1e3 * t.best_run,
                a.repeat > 1 ? cat("best of ", a.repeat - 1, " untraced").c_str() : "traced", 1e3 * t.traced_run, 1e3 * t.trace, t.traced,
                t.trace_bytes / 1e6, t.skipped, 1e3 * write_s);
    if (!t.profile.empty()) std::printf("spexec: rank %d: GPU time per op kind (op count ms):\n%s", g.rank, t.profile.c_str());
  };
  if (std::system(("mkdir -p '" + a.out + "'").c_str()) != 0) {
    std::fprintf(stderr, "spexec: cannot create %s\n", a.out.c_str());
    return 2;
  }
  auto t0 = std::chrono::steady_clock::now();
  std::vector<RankResult> results;
  if (process_mode) {
    int dev = a.device >= 0 ? a.device : (plan.split ? std::max(0, env_int({"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"})) : plan.device[a.rank]);
    if (plan.split && a.device < 0 && env_int({"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID"}) < 0) dev = a.rank % std::max(1, visible_gpus());
    results.push_back(run_process(plan, a.rank, dev, a.id_file, a.timeout, fn));
  } else {
    results = run_threads(plan, a.timeout, fn);
  }
  double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int failed = 0;
  double slowest = 0;
  for (const auto& r : results) {
    if (!r.ok) {
      failed++;
      std::fprintf(stderr, "spexec: rank %d FAILED: %s\n", r.rank, r.error.c_str());
    }
    slowest = std::max(slowest, r.seconds);
  }
  std::printf("spexec: %s: %zu rank(s), %s, programs %.3f s (slowest rank), %.3f s with communicator setup\n",
              failed ? "FAILED" : "ok", results.size(), plan.split ? "split layout" : "direct layout", slowest, total);
  return failed ? 1 : 0;
}
