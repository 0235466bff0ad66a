// comm_test: the communicator layer on real GPUs — both layouts (split from a world
// communicator; a communicator per group with two ranks per GPU), every collective, P2P, the
// Paddle partial-P2P all-gather with seed 001's numbers, the watchdog turning a mismatched
// program into an error, and the one-process-per-rank mode with ids shared through files.
// Usage: comm_test [filter]            (needs ≥ 2 GPUs)
//        comm_test --child RANK WORLD ID_BASE   (internal: one rank of the process-mode test)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include "../gpu/check.cuh"
#include "../gpu/kernels.cuh"
#include "../gpu/launch.cuh"
#include "testing.hpp"

using namespace spx;

static int g_gpus = 0;
constexpr double kTimeout = 30;  // generous for connection setup; the watchdog test uses its own

static std::vector<double> iota(int n, double start, double step) {
  std::vector<double> v(n);
  for (int i = 0; i < n; i++) v[i] = start + i * step;
  return v;
}

static void expect_ok(const std::vector<RankResult>& rs) {
  for (const auto& r : rs) CHECK_MSG(r.ok, "rank %d failed: %s", r.rank, r.error.c_str());
}

TEST(collectives_split_layout) {
  // world 2 on 2 GPUs: the tp group [0 1] and a reversed group [1 0] are split from the world.
  CommPlan plan = plan_comms(2, g_gpus, {{"tp", {0, 1}}, {"rev", {1, 0}}}, {{0, 1}});
  CHECK(plan.split);
  for (DType d : {DType::F32, DType::BF16}) {
    std::vector<std::vector<double>> got(2 * 7);
    auto rs = run_threads(plan, kTimeout, [&](Gpu& g, RankComms& c) {
      int r = g.rank;
      std::vector<int> tp = {0, 1};
      DTensor x = upload(g, d, {4}, iota(4, 1 + 10 * r, 1), "x");  // r0: 1..4, r1: 11..14
      c.all_reduce(tp, x, ncclSum, "all_reduce");
      got[r * 7 + 0] = download(g, x);
      DTensor in = upload(g, d, {2}, iota(2, 100 * r, 1), "in");
      DTensor out = dalloc(g, d, {4}, "out");
      c.all_gather({1, 0}, in, out, "all_gather rev");  // group-rank order: rank 1 first
      got[r * 7 + 1] = download(g, out);
      DTensor big = upload(g, d, {4}, iota(4, r, 1), "big");
      DTensor part = dalloc(g, d, {2}, "part");
      c.reduce_scatter(tp, big, part, ncclSum, "reduce_scatter");
      got[r * 7 + 2] = download(g, part);
      DTensor b = upload(g, d, {3}, iota(3, 7 * r, 1), "b");
      c.broadcast(tp, b, 1, "broadcast");
      got[r * 7 + 3] = download(g, b);
      // Seed 001 (unify branch): TP t sends chunk t of its tensor; the receivers all-gather.
      DTensor buf = upload(g, d, {8}, iota(8, 10 + 80 * r, 10), "partial");
      c.all_gather_flat(tp, buf, "all_gather_flat");
      got[r * 7 + 4] = download(g, buf);
      // P2P: both ranks send and receive in one batch.
      DTensor s = upload(g, d, {2, 2}, iota(4, 10 * (r + 1), 1), "send"), rcv = dalloc(g, d, {2, 2}, "recv");
      c.p2p({{true, 1 - r, &s}, {false, 1 - r, &rcv}}, "p2p");
      got[r * 7 + 5] = download(g, rcv);
      DTensor m = upload(g, d, {2}, {double(r), double(5 - r)}, "max");
      c.all_reduce(tp, m, ncclMax, "all_reduce max");
      got[r * 7 + 6] = download(g, m);
    });
    expect_ok(rs);
    for (int r = 0; r < 2; r++) {
      CHECK(got[r * 7 + 0] == (std::vector<double>{12, 14, 16, 18}));
      CHECK(got[r * 7 + 1] == (std::vector<double>{100, 101, 0, 1}));
      CHECK(got[r * 7 + 2] == (r == 0 ? std::vector<double>{1, 3} : std::vector<double>{5, 7}));
      CHECK(got[r * 7 + 3] == (std::vector<double>{7, 8, 9}));
      CHECK(got[r * 7 + 4] == (std::vector<double>{10, 20, 30, 40, 130, 140, 150, 160}));
      CHECK(got[r * 7 + 5] == iota(4, 10 * (2 - r), 1));
      CHECK(got[r * 7 + 6] == (std::vector<double>{1, 5}));
    }
  }
}

TEST(partial_p2p_direct_layout_4_ranks) {
  // tp 2 × pp 2 (rank = pp·2 + tp) on however many GPUs there are; with 2 GPUs the direct layout
  // puts two ranks on each GPU, every communicator on distinct GPUs.
  std::vector<GroupUse> groups = {{"tp", {0, 1}}, {"tp", {2, 3}}, {"pp", {0, 2}}, {"pp", {1, 3}}};
  CommPlan plan = plan_comms(4, g_gpus, groups, {{0, 2}, {1, 3}});
  std::printf("  %s\n", plan.describe().c_str());
  std::vector<std::vector<double>> partial(4), full(4), summed(4);
  auto rs = run_threads(plan, kTimeout, [&](Gpu& g, RankComms& c) {
    int r = g.rank, pp = r / 2, tp = r % 2;
    std::vector<int> my_tp = {pp * 2, pp * 2 + 1};
    if (pp == 0) {
      DTensor x = upload(g, DType::F32, {2, 4}, iota(8, 10 + 80 * tp, 10), "X_t");  // SP: X_0 ≠ X_1
      DTensor chunk = kern::narrow(g, kern::convert(g, x, DType::F32), 0, tp, 1);  // flat chunk t (rows of 4)
      c.p2p({{true, r + 2, &chunk}}, "partial send");
      c.p2p({{true, r + 2, &x}}, "full send");
    } else {
      DTensor buf = dalloc(g, DType::F32, {2, 4}, "recv buffer");
      DTensor chunk = dalloc(g, DType::F32, {1, 4}, "chunk");
      c.p2p({{false, r - 2, &chunk}}, "partial recv");
      kern::copy_block(g, chunk, 1, 0, buf, 2, tp, 1, 1, 4);
      c.all_gather_flat(my_tp, buf, "all_gather_partial");
      partial[r] = download(g, buf);
      DTensor fb = dalloc(g, DType::F32, {2, 4}, "full recv");
      c.p2p({{false, r - 2, &fb}}, "full recv");
      full[r] = download(g, fb);
    }
    DTensor one = upload(g, DType::F32, {1}, {double(r)}, "one");
    c.all_reduce({tp, tp + 2}, one, ncclSum, "pp all_reduce");
    summed[r] = download(g, one);
  });
  expect_ok(rs);
  for (int r = 2; r < 4; r++) {
    // Both receivers hold [chunk0(X_0), chunk1(X_1)]; X_t's other chunk is lost (seed 001).
    CHECK(partial[r] == (std::vector<double>{10, 20, 30, 40, 130, 140, 150, 160}));
    CHECK(full[r] == iota(8, 10 + 80 * (r - 2), 10));
  }
  for (int r = 0; r < 4; r++) CHECK(summed[r] == (std::vector<double>{double(2 * (r % 2) + 2)}));
}

TEST(watchdog_turns_a_hang_into_an_error) {
  // Rank 0 all-reduces, rank 1 never does: without the watchdog rank 0 would wait forever.
  CommPlan plan = plan_comms(2, g_gpus, {{"tp", {0, 1}}}, {});
  auto t0 = std::chrono::steady_clock::now();
  auto rs = run_threads(plan, 3.0, [&](Gpu& g, RankComms& c) {
    DTensor x = upload(g, DType::F32, {4}, iota(4, 0, 1), "x");
    if (g.rank == 0) c.all_reduce({0, 1}, x, ncclSum, "op #5 all_reduce tp[0 1]");
  });
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(!rs[0].ok);
  CHECK_MSG(rs[0].error.find("op #5 all_reduce tp[0 1] did not complete within 3 s") != std::string::npos, "rank 0 error: %s",
            rs[0].error.c_str());
  CHECK_MSG(rs[0].error.find("rank 0") != std::string::npos, "error lacks the rank: %s", rs[0].error.c_str());
  std::printf("  rank 0: %s\n  rank 1: %s\n  ended after %.1f s\n", rs[0].error.c_str(), rs[1].ok ? "ok" : rs[1].error.c_str(), secs);
  CHECK(secs < 30);
}

static int child(int rank, int world, const char* base) {
  CommPlan plan = plan_comms(world, g_gpus, {{"tp", {0, 1}}}, {});
  RankResult r = run_process(plan, rank, plan.device[rank], base, kTimeout, [&](Gpu& g, RankComms& c) {
    DTensor x = upload(g, DType::BF16, {3}, iota(3, rank, 1), "x");
    c.all_reduce({0, 1}, x, ncclSum, "all_reduce");
    std::vector<double> v = download(g, x);
    if (v != std::vector<double>{1, 3, 5}) fail("rank ", rank, ": all_reduce gave ", v[0], " ", v[1], " ", v[2]);
  });
  if (!r.ok) std::fprintf(stderr, "child rank %d: %s\n", rank, r.error.c_str());
  return r.ok ? 0 : 1;
}

TEST(process_mode_with_id_file) {
  char base[] = "/tmp/spx_comm_test_XXXXXX";
  int fd = mkstemp(base);
  close(fd);
  unlink(base);
  std::vector<pid_t> pids;
  for (int r = 0; r < 2; r++) {
    pid_t p = fork();
    if (p == 0) {
      std::string rs = std::to_string(r);
      execl("/proc/self/exe", "comm_test", "--child", rs.c_str(), "2", base, (char*)nullptr);
      _exit(127);
    }
    pids.push_back(p);
  }
  for (pid_t p : pids) {
    int st = 0;
    waitpid(p, &st, 0);
    CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 0, "child %d exit status %d", (int)p, st);
  }
  unlink((std::string(base) + ".world").c_str());
}

int main(int argc, char** argv) {
  g_gpus = visible_gpus();
  if (argc >= 5 && std::string(argv[1]) == "--child") return child(std::atoi(argv[2]), std::atoi(argv[3]), argv[4]);
  // The parent must not touch CUDA before forking children: visible_gpus only counts devices.
  if (g_gpus < 2) {
    std::fprintf(stderr, "comm_test: needs 2 GPUs, found %d\n", g_gpus);
    return 2;
  }
  int v = 0;
  ncclGetVersion(&v);
  std::printf("NCCL %d, %d GPUs, NCCL_NVLS_ENABLE=%s\n", v, g_gpus, getenv("NCCL_NVLS_ENABLE") ? getenv("NCCL_NVLS_ENABLE") : "(unset)");
  return spxtest::run_all(argc > 1 ? argv[1] : nullptr);
}
