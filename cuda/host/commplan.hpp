// commplan.hpp: which NCCL communicators a run needs and which GPU each rank uses (GPU-free, so
// it is unit-tested without a device).
//
// Every collective names its group explicitly (global ranks in group-rank order). Groups with
// the same ordered rank list share one communicator. Two layouts:
//
//   split:  one rank per GPU. A world communicator is created with ncclCommInitRank and every
//           group is cut from it with ncclCommSplit (color = the group's slot in its round,
//           key = the rank's index in the group, so group-rank order is the listed order).
//           Groups are split in rounds of pairwise-disjoint groups, since a rank passes one
//           color per split call. P2P goes over the world communicator.
//   direct: more ranks than GPUs. NCCL refuses two ranks of one communicator on one GPU, so
//           ranks are placed on GPUs such that every communicator's ranks sit on distinct
//           GPUs (a graph colouring; e.g. tp 2 × pp 2 on 2 GPUs puts rank (pp,tp) on GPU
//           (pp+tp) mod 2), and each group's communicator is created directly with its own
//           ncclUniqueId. P2P between two ranks uses the pair's own communicator.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace spx {

struct CommGroup {
  std::vector<int> ranks;  // global ranks in group-rank order
  std::vector<std::string> names;  // the program's group names using it (tp, pp, …, "p2p")
  int index_of(int rank) const;
  std::string str() const;  // "tp[0 1]"
};

struct CommPlan {
  int world = 0;
  int gpus = 0;
  bool split = true;
  std::vector<int> device;  // rank → local GPU index
  std::vector<CommGroup> groups;  // sorted by rank list
  std::vector<std::vector<int>> rounds;  // split layout: indices into groups, disjoint per round

  // find returns the index of the communicator with exactly these ranks, or -1.
  int find(const std::vector<int>& ranks) const;
  // p2p_comm returns the communicator a transfer between a and b uses and the peer's index in
  // it; -1 means the world communicator (split layout), peer index = global rank.
  std::pair<int, int> p2p_comm(int self, int peer) const;
  std::string describe() const;
};

struct GroupUse {
  std::string name;
  std::vector<int> ranks;
};

// plan_comms builds the plan for `world` ranks on `gpus` GPUs from every group the programs use
// and every pair of ranks that exchange P2P messages. Throws spx::Error when the ranks cannot be
// placed (a group larger than the GPU count, or no colouring found).
CommPlan plan_comms(int world, int gpus, const std::vector<GroupUse>& groups, const std::vector<std::pair<int, int>>& p2p_pairs);

}  // namespace spx
