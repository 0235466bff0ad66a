// comm.cuh: one rank's NCCL communicators and the collectives the programs use, with the
// watchdog. Communicators are non-blocking (ncclConfig_t.blocking = 0): no NCCL call can hang
// the host, and every operation is waited for by polling its completion with a deadline. When
// the deadline passes (a peer never joined: mismatched programs, a dead rank) the rank aborts
// its communicators with ncclCommAbort, which also stops its kernels, and throws an error
// naming the rank and op; in the one-process mode it also tells the other ranks' threads to
// abort, so one failure ends the whole run at once instead of after every timeout.
#pragma once

#include <nccl.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "../host/commplan.hpp"
#include "dtensor.cuh"

namespace spx {

// AbortFlag is shared by the ranks of one process.
struct AbortFlag {
  std::atomic<bool> raised{false};
  std::mutex mu;
  std::string why;
  void raise(const std::string& reason);
  std::string reason();
};

// IdSource hands out the ncclUniqueIds of a run by tag ("world", "g3"): created by the rank
// that `creates` them and read by the others. In the one-process mode ids are made up front in
// memory; under mpirun they travel through files next to a path given on the command line.
class IdSource {
 public:
  virtual ~IdSource() = default;
  virtual ncclUniqueId get(const std::string& tag, bool create, double timeout_s) = 0;
};

class MemoryIds : public IdSource {
 public:
  ncclUniqueId get(const std::string& tag, bool create, double timeout_s) override;

 private:
  std::mutex mu_;
  std::map<std::string, ncclUniqueId> ids_;
};

// FileIds writes the id for tag to "<base>.<tag>" (atomically, by rename) and waits for it.
// The launcher must remove stale files of an earlier run first (cuda/run-mpi.sh does).
class FileIds : public IdSource {
 public:
  explicit FileIds(std::string base) : base_(std::move(base)) {}
  ncclUniqueId get(const std::string& tag, bool create, double timeout_s) override;

 private:
  std::string base_;
};

struct P2POp {
  bool send;
  int peer;  // global rank
  DTensor* buf;  // sent from, or received into (allocated by the caller)
};

class RankComms {
 public:
  RankComms(const Gpu& g, const CommPlan& plan, IdSource& ids, double timeout_s, AbortFlag* abort);
  ~RankComms();
  RankComms(const RankComms&) = delete;
  RankComms& operator=(const RankComms&) = delete;

  // init creates this rank's communicators (collective over the ranks, like NCCL's init).
  void init();
  // Collectives over the communicator with exactly `ranks`; `what` names the op in errors.
  void all_reduce(const std::vector<int>& ranks, DTensor& buf, ncclRedOp_t op, const std::string& what);
  // all_gather: out = concat over group ranks of in (flat, group-rank order).
  void all_gather(const std::vector<int>& ranks, const DTensor& in, DTensor& out, const std::string& what);
  // reduce_scatter: out = chunk (own index) of the sum of every rank's flat in.
  void reduce_scatter(const std::vector<int>& ranks, const DTensor& in, DTensor& out, ncclRedOp_t op, const std::string& what);
  void broadcast(const std::vector<int>& ranks, DTensor& buf, int root_index, const std::string& what);
  // all_gather_flat: buf's flat chunk q (numel/n elements) comes from group rank q, in place —
  // the receiving half of Paddle's partial P2P (all_gather_partial).
  void all_gather_flat(const std::vector<int>& ranks, DTensor& buf, const std::string& what);
  // p2p runs a batch of sends and receives as one NCCL group.
  void p2p(const std::vector<P2POp>& ops, const std::string& what);
  // barrier all-reduces one element over the world (or every group in the direct layout).
  void finish();  // finalize and destroy (after a successful run)
  void abort(const std::string& why);  // ncclCommAbort everything (idempotent)

  const CommPlan& plan() const { return plan_; }

 private:
  ncclComm_t comm_for(const std::vector<int>& ranks, const std::string& what, int* index);
  void wait_comms(const std::vector<ncclComm_t>& comms, const std::string& what);
  void wait_stream(const std::vector<ncclComm_t>& comms, const std::string& what);
  [[noreturn]] void timeout(const std::string& what, const std::string& stage);
  void check_abort(const std::string& what);

  const Gpu& g_;
  const CommPlan& plan_;
  IdSource& ids_;
  double timeout_s_;
  AbortFlag* abort_;
  ncclComm_t world_ = nullptr;
  std::vector<ncclComm_t> comms_;  // by plan group index; nullptr where not a member
  bool aborted_ = false;
  cudaEvent_t ev_ = nullptr;
};

ncclDataType_t nccl_dtype(DType d);

}  // namespace spx
