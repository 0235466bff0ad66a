#include "comm.cuh"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "../host/safetensors.hpp"
#include "check.cuh"

namespace spx {

using Clock = std::chrono::steady_clock;

void AbortFlag::raise(const std::string& reason) {
  std::lock_guard<std::mutex> l(mu);
  if (!raised.load()) why = reason;
  raised.store(true);
}

std::string AbortFlag::reason() {
  std::lock_guard<std::mutex> l(mu);
  return why;
}

ncclUniqueId MemoryIds::get(const std::string& tag, bool, double) {
  std::lock_guard<std::mutex> l(mu_);
  auto it = ids_.find(tag);
  if (it != ids_.end()) return it->second;
  ncclUniqueId id;
  NCCL_OK(ncclGetUniqueId(&id));
  ids_[tag] = id;
  return id;
}

ncclUniqueId FileIds::get(const std::string& tag, bool create, double timeout_s) {
  std::string path = base_ + "." + tag;
  ncclUniqueId id;
  if (create) {
    NCCL_OK(ncclGetUniqueId(&id));
    std::vector<uint8_t> b(reinterpret_cast<uint8_t*>(&id), reinterpret_cast<uint8_t*>(&id) + sizeof id);
    write_file(path, b);  // written to a temporary name and renamed: readers never see half an id
    return id;
  }
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    FILE* f = std::fopen(path.c_str(), "rb");
    if (f) {
      size_t n = std::fread(&id, 1, sizeof id, f);
      std::fclose(f);
      if (n == sizeof id) return id;
    }
    if (Clock::now() > deadline)
      fail(thread_context(), ": no NCCL id at ", path, " after ", timeout_s, " s (did the creating rank start?)");
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

ncclDataType_t nccl_dtype(DType d) {
  switch (d) {
    case DType::F32: return ncclFloat32;
    case DType::BF16: return ncclBfloat16;
    case DType::F16: return ncclFloat16;
    case DType::F64: return ncclFloat64;
    case DType::I64: return ncclInt64;
    case DType::I32: return ncclInt32;
  }
  fail("no NCCL dtype for ", dtype_name(d));
}

RankComms::RankComms(const Gpu& g, const CommPlan& plan, IdSource& ids, double timeout_s, AbortFlag* abort)
    : g_(g), plan_(plan), ids_(ids), timeout_s_(timeout_s), abort_(abort) {
  comms_.assign(plan_.groups.size(), nullptr);
}

RankComms::~RankComms() {
  if (ev_) cudaEventDestroy(ev_);
  // Communicators still alive here belong to a failed run: abort rather than wait on peers.
  if (!aborted_) {
    for (auto c : comms_)
      if (c) ncclCommAbort(c);
    if (world_) ncclCommAbort(world_);
  }
}

static ncclConfig_t nonblocking_config() {
  ncclConfig_t cfg = NCCL_CONFIG_INITIALIZER;
  cfg.blocking = 0;
  return cfg;
}

void RankComms::init() {
  CUDA_OK(cudaSetDevice(g_.device));
  CUDA_OK(cudaEventCreateWithFlags(&ev_, cudaEventDisableTiming));
  ncclConfig_t cfg = nonblocking_config();
  int r = g_.rank;
  if (plan_.split) {
    ncclUniqueId id = ids_.get("world", r == 0, timeout_s_);
    NCCL_OK(ncclCommInitRankConfig(&world_, plan_.world, id, r, &cfg));
    wait_comms({world_}, "init of the world communicator");
    for (size_t ri = 0; ri < plan_.rounds.size(); ri++) {
      int color = NCCL_SPLIT_NOCOLOR, key = 0, gi = -1;
      for (size_t slot = 0; slot < plan_.rounds[ri].size(); slot++) {
        int g = plan_.rounds[ri][slot];
        int idx = plan_.groups[g].index_of(r);
        if (idx >= 0) {
          color = static_cast<int>(slot);
          key = idx;
          gi = g;
        }
      }
      ncclComm_t c = nullptr;
      ncclConfig_t scfg = nonblocking_config();
      NCCL_OK(ncclCommSplit(world_, color, key, &c, &scfg));
      std::string what = gi >= 0 ? "ncclCommSplit for " + plan_.groups[gi].str() : "ncclCommSplit (not a member)";
      wait_comms(c ? std::vector<ncclComm_t>{world_, c} : std::vector<ncclComm_t>{world_}, what);
      if (gi >= 0) comms_[gi] = c;
    }
  } else {
    for (size_t gi = 0; gi < plan_.groups.size(); gi++) {
      const CommGroup& grp = plan_.groups[gi];
      int idx = grp.index_of(r);
      if (idx < 0) continue;
      ncclUniqueId id = ids_.get("g" + std::to_string(gi), idx == 0, timeout_s_);
      NCCL_OK(ncclCommInitRankConfig(&comms_[gi], static_cast<int>(grp.ranks.size()), id, idx, &cfg));
      wait_comms({comms_[gi]}, "init of communicator " + grp.str());
    }
  }
}

void RankComms::check_abort(const std::string& what) {
  if (abort_ && abort_->raised.load()) {
    std::string why = abort_->reason();
    abort("another rank failed");
    fail(thread_context(), ": ", what, ": aborted because another rank failed: ", why);
  }
}

void RankComms::timeout(const std::string& what, const std::string& stage) {
  std::string msg = cat(thread_context(), ": ", what, " did not complete within ", timeout_s_, " s (", stage,
                        "): a peer never joined — mismatched programs or a dead rank; communicators aborted");
  abort(msg);
  if (abort_) abort_->raise(msg);
  throw Error(msg);
}

void RankComms::wait_comms(const std::vector<ncclComm_t>& comms, const std::string& what) {
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s_);
  int sleep_us = 10;
  for (;;) {
    bool pending = false;
    for (ncclComm_t c : comms) {
      ncclResult_t st;
      ncclResult_t q = ncclCommGetAsyncError(c, &st);
      if (q != ncclSuccess) nccl_fail(q, ("ncclCommGetAsyncError during " + what).c_str(), __FILE__, __LINE__);
      if (st == ncclInProgress) pending = true;
      else if (st != ncclSuccess) {
        abort("NCCL error");
        nccl_fail(st, what.c_str(), __FILE__, __LINE__);
      }
    }
    if (!pending) return;
    check_abort(what);
    if (Clock::now() > deadline) timeout(what, "NCCL call still in progress");
    std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    sleep_us = std::min(sleep_us * 2, 2000);
  }
}

void RankComms::wait_stream(const std::vector<ncclComm_t>& comms, const std::string& what) {
  CUDA_OK(cudaEventRecord(ev_, g_.stream));
  auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s_);
  int sleep_us = 10;
  for (;;) {
    cudaError_t q = cudaEventQuery(ev_);
    if (q == cudaSuccess) return;
    if (q != cudaErrorNotReady) CUDA_OK(q);
    for (ncclComm_t c : comms) {
      ncclResult_t st;
      if (ncclCommGetAsyncError(c, &st) == ncclSuccess && st != ncclSuccess && st != ncclInProgress) {
        abort("NCCL error");
        nccl_fail(st, what.c_str(), __FILE__, __LINE__);
      }
    }
    check_abort(what);
    if (Clock::now() > deadline) timeout(what, "kernel never completed");
    std::this_thread::sleep_for(std::chrono::microseconds(sleep_us));
    sleep_us = std::min(sleep_us * 2, 2000);
  }
}

void RankComms::abort(const std::string&) {
  if (aborted_) return;
  aborted_ = true;
  for (auto& c : comms_)
    if (c) {
      ncclCommAbort(c);
      c = nullptr;
    }
  if (world_) {
    ncclCommAbort(world_);
    world_ = nullptr;
  }
}

ncclComm_t RankComms::comm_for(const std::vector<int>& ranks, const std::string& what, int* index) {
  if (aborted_) fail(thread_context(), ": ", what, ": communicators were aborted");
  int gi = plan_.find(ranks);
  if (gi < 0 || !comms_[gi]) {
    std::string rs;
    for (int r : ranks) rs += " " + std::to_string(r);
    fail(thread_context(), ": ", what, ": rank ", g_.rank, " has no communicator for ranks [", rs, " ]");
  }
  *index = plan_.groups[gi].index_of(g_.rank);
  return comms_[gi];
}

void RankComms::all_reduce(const std::vector<int>& ranks, DTensor& buf, ncclRedOp_t op, const std::string& what) {
  int idx;
  ncclComm_t c = comm_for(ranks, what, &idx);
  NCCL_OK(ncclAllReduce(buf.data(), buf.data(), buf.numel(), nccl_dtype(buf.dtype), op, c, g_.stream));
  wait_comms({c}, what);
  wait_stream({c}, what);
}

void RankComms::all_gather(const std::vector<int>& ranks, const DTensor& in, DTensor& out, const std::string& what) {
  int idx;
  ncclComm_t c = comm_for(ranks, what, &idx);
  if (out.numel() != in.numel() * static_cast<int64_t>(ranks.size()) || out.dtype != in.dtype)
    fail(thread_context(), ": ", what, ": all_gather of ", in.str(), " over ", ranks.size(), " ranks into ", out.str());
  NCCL_OK(ncclAllGather(in.data(), out.data(), in.numel(), nccl_dtype(in.dtype), c, g_.stream));
  wait_comms({c}, what);
  wait_stream({c}, what);
}

void RankComms::reduce_scatter(const std::vector<int>& ranks, const DTensor& in, DTensor& out, ncclRedOp_t op,
                               const std::string& what) {
  int idx;
  ncclComm_t c = comm_for(ranks, what, &idx);
  if (in.numel() != out.numel() * static_cast<int64_t>(ranks.size()) || out.dtype != in.dtype)
    fail(thread_context(), ": ", what, ": reduce_scatter of ", in.str(), " over ", ranks.size(), " ranks into ", out.str());
  NCCL_OK(ncclReduceScatter(in.data(), out.data(), out.numel(), nccl_dtype(in.dtype), op, c, g_.stream));
  wait_comms({c}, what);
  wait_stream({c}, what);
}

void RankComms::broadcast(const std::vector<int>& ranks, DTensor& buf, int root_index, const std::string& what) {
  int idx;
  ncclComm_t c = comm_for(ranks, what, &idx);
  NCCL_OK(ncclBroadcast(buf.data(), buf.data(), buf.numel(), nccl_dtype(buf.dtype), root_index, c, g_.stream));
  wait_comms({c}, what);
  wait_stream({c}, what);
}

void RankComms::all_gather_flat(const std::vector<int>& ranks, DTensor& buf, const std::string& what) {
  int idx;
  ncclComm_t c = comm_for(ranks, what, &idx);
  int64_t n = static_cast<int64_t>(ranks.size());
  if (buf.numel() % n != 0) fail(thread_context(), ": ", what, ": ", buf.str(), " does not split into ", n, " flat chunks");
  int64_t chunk = buf.numel() / n;
  // In-place all-gather: NCCL allows sendbuff == recvbuff + rank·count.
  const uint8_t* send = buf.as<uint8_t>() + idx * chunk * static_cast<int64_t>(dtype_size(buf.dtype));
  NCCL_OK(ncclAllGather(send, buf.data(), chunk, nccl_dtype(buf.dtype), c, g_.stream));
  wait_comms({c}, what);
  wait_stream({c}, what);
}

void RankComms::p2p(const std::vector<P2POp>& ops, const std::string& what) {
  if (ops.empty()) return;
  std::vector<ncclComm_t> used;
  NCCL_OK(ncclGroupStart());
  for (const P2POp& op : ops) {
    auto [gi, peer] = plan_.p2p_comm(g_.rank, op.peer);
    ncclComm_t c = gi < 0 ? world_ : comms_[gi];
    if (!c || aborted_) fail(thread_context(), ": ", what, ": no communicator to rank ", op.peer);
    if (std::find(used.begin(), used.end(), c) == used.end()) used.push_back(c);
    if (op.send)
      NCCL_OK(ncclSend(op.buf->data(), op.buf->numel(), nccl_dtype(op.buf->dtype), peer, c, g_.stream));
    else
      NCCL_OK(ncclRecv(op.buf->data(), op.buf->numel(), nccl_dtype(op.buf->dtype), peer, c, g_.stream));
  }
  NCCL_OK(ncclGroupEnd());
  wait_comms(used, what);
  wait_stream(used, what);
}

void RankComms::finish() {
  std::vector<ncclComm_t> all;
  for (auto c : comms_)
    if (c) all.push_back(c);
  if (world_) all.push_back(world_);
  for (auto c : all) NCCL_OK(ncclCommFinalize(c));
  wait_comms(all, "ncclCommFinalize");
  for (auto c : all) NCCL_OK(ncclCommDestroy(c));
  for (auto& c : comms_) c = nullptr;
  world_ = nullptr;
  aborted_ = true;  // nothing left to abort
}

}  // namespace spx
