#include "commplan.hpp"

#include <algorithm>
#include <functional>
#include <set>

#include "error.hpp"

namespace spx {

int CommGroup::index_of(int rank) const {
  for (size_t i = 0; i < ranks.size(); i++)
    if (ranks[i] == rank) return static_cast<int>(i);
  return -1;
}

std::string CommGroup::str() const {
  std::string s;
  for (size_t i = 0; i < names.size(); i++) s += (i ? "/" : "") + names[i];
  s += "[";
  for (size_t i = 0; i < ranks.size(); i++) s += (i ? " " : "") + std::to_string(ranks[i]);
  return s + "]";
}

int CommPlan::find(const std::vector<int>& ranks) const {
  for (size_t i = 0; i < groups.size(); i++)
    if (groups[i].ranks == ranks) return static_cast<int>(i);
  return -1;
}

std::pair<int, int> CommPlan::p2p_comm(int self, int peer) const {
  if (split) return {-1, peer};
  int c = find({std::min(self, peer), std::max(self, peer)});
  if (c < 0) fail("no P2P communicator between ranks ", self, " and ", peer);
  return {c, groups[c].index_of(peer)};
}

std::string CommPlan::describe() const {
  std::string s = cat(world, " ranks on ", gpus, " GPUs, ", split ? "split from a world communicator" : "communicators per group", "; devices");
  for (int r = 0; r < world; r++) s += cat(" ", r, "→", device[r]);
  s += "; groups";
  for (const auto& g : groups) s += " " + g.str();
  return s;
}

namespace {

// place colours ranks with `gpus` colours so that no two ranks sharing a communicator share a
// GPU. Ranks are tried in order and colours from rank mod gpus upward, so the identity-like
// layout wins whenever it is valid; backtracking finds another one otherwise.
bool place(int world, int gpus, const std::vector<std::set<int>>& adj, std::vector<int>& dev) {
  long steps = 0;  // bounded, so a hopeless request fails instead of searching forever
  std::function<bool(int)> go = [&](int r) {
    if (r == world) return true;
    if (++steps > 1000000) fail("comm plan: no placement of ", world, " ranks on ", gpus, " GPUs found within the search bound");
    for (int k = 0; k < gpus; k++) {
      int c = (r + k) % gpus;
      bool ok = true;
      for (int o : adj[r])
        if (o < r && dev[o] == c) ok = false;
      if (!ok) continue;
      dev[r] = c;
      if (go(r + 1)) return true;
    }
    return false;
  };
  return go(0);
}

}  // namespace

CommPlan plan_comms(int world, int gpus, const std::vector<GroupUse>& uses, const std::vector<std::pair<int, int>>& p2p_pairs) {
  if (world < 1) fail("comm plan: world is ", world);
  if (gpus < 1) fail("comm plan: no GPUs");
  CommPlan p;
  p.world = world;
  p.gpus = gpus;
  p.split = world <= gpus;
  auto add = [&](const std::string& name, const std::vector<int>& ranks) {
    std::set<int> seen;
    for (int r : ranks) {
      if (r < 0 || r >= world) fail("comm plan: group ", name, " names rank ", r, " outside world ", world);
      if (!seen.insert(r).second) fail("comm plan: group ", name, " lists rank ", r, " twice");
    }
    if (ranks.empty()) fail("comm plan: group ", name, " is empty");
    int i = p.find(ranks);
    if (i < 0) {
      p.groups.push_back(CommGroup{ranks, {}});
      i = static_cast<int>(p.groups.size()) - 1;
    }
    auto& names = p.groups[i].names;
    if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
  };
  for (const auto& u : uses) add(u.name, u.ranks);
  if (!p.split)
    for (const auto& pr : p2p_pairs) {
      if (pr.first == pr.second) fail("comm plan: rank ", pr.first, " sends to itself");
      add("p2p", {std::min(pr.first, pr.second), std::max(pr.first, pr.second)});
    }
  std::sort(p.groups.begin(), p.groups.end(), [](const CommGroup& a, const CommGroup& b) { return a.ranks < b.ranks; });
  for (auto& g : p.groups) std::sort(g.names.begin(), g.names.end());

  p.device.assign(world, 0);
  if (p.split) {
    for (int r = 0; r < world; r++) p.device[r] = r;
    for (size_t i = 0; i < p.groups.size(); i++) {
      bool placed = false;
      for (auto& round : p.rounds) {
        bool disjoint = true;
        for (int j : round)
          for (int r : p.groups[i].ranks)
            if (p.groups[j].index_of(r) >= 0) disjoint = false;
        if (disjoint) {
          round.push_back(static_cast<int>(i));
          placed = true;
          break;
        }
      }
      if (!placed) p.rounds.push_back({static_cast<int>(i)});
    }
    return p;
  }
  std::vector<std::set<int>> adj(world);
  for (const auto& g : p.groups) {
    if (static_cast<int>(g.ranks.size()) > gpus)
      fail("comm plan: communicator ", g.str(), " has ", g.ranks.size(), " ranks but only ", gpus,
           " GPUs: NCCL allows one rank per GPU in a communicator");
    for (int a : g.ranks)
      for (int b : g.ranks)
        if (a != b) adj[a].insert(b);
  }
  if (!place(world, gpus, adj, p.device))
    fail("comm plan: cannot place ", world, " ranks on ", gpus, " GPUs with every communicator on distinct GPUs");
  return p;
}

}  // namespace spx
