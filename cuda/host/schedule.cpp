#include "schedule.hpp"

#include "error.hpp"

namespace spx {

namespace {

struct Cursor {
  std::vector<size_t> comm;  // indices of the rank's collective and p2p ops
  size_t pos = 0;
  std::vector<bool> done;  // per transfer of the current p2p op
  bool finished() const { return pos >= comm.size(); }
};

bool same_attrs(const IrOp& a, const IrOp& b) {
  return a.op == b.op && a.ints == b.ints && a.floats == b.floats && a.strs == b.strs && a.group.name == b.group.name;
}

std::string where(const std::vector<Program>& progs, int r, const Cursor& c) {
  if (c.finished()) return cat("rank ", r, " (finished)");
  size_t i = c.comm[c.pos];
  return cat("rank ", r, " op ", i, " ", progs[r].ops[i].str());
}

}  // namespace

void check_schedule(const std::vector<Program>& progs) {
  int n = static_cast<int>(progs.size());
  std::vector<Cursor> cur(n);
  for (int r = 0; r < n; r++) {
    if (progs[r].rank != r || progs[r].world != n)
      fail("schedule: program ", r, " says rank ", progs[r].rank, " of world ", progs[r].world, "; ", n, " programs given");
    for (size_t i = 0; i < progs[r].ops.size(); i++) {
      OpClass c = op_class(progs[r].ops[i].op);
      if (c == OpClass::Collective || c == OpClass::PointToPoint) cur[r].comm.push_back(i);
    }
  }
  auto op_of = [&](int r) -> const IrOp& { return progs[r].ops[cur[r].comm[cur[r].pos]]; };
  auto advance = [&](int r) {
    cur[r].pos++;
    cur[r].done.clear();
    if (!cur[r].finished() && op_of(r).op == "p2p") cur[r].done.assign(op_of(r).p2p.size(), false);
  };
  for (int r = 0; r < n; r++)
    if (!cur[r].finished() && op_of(r).op == "p2p") cur[r].done.assign(op_of(r).p2p.size(), false);

  for (;;) {
    bool progress = false, all_done = true;
    for (int r = 0; r < n; r++) {
      if (cur[r].finished()) continue;
      all_done = false;
      const IrOp& o = op_of(r);
      if (o.op != "p2p") {
        bool ready = true;
        for (int m : o.group.ranks) {
          if (cur[m].finished())
            fail("schedule: rank ", m, " finished its program while ", where(progs, r, cur[r]), " waits for it");
          const IrOp& q = op_of(m);
          if (q.op == "p2p" || q.group.ranks != o.group.ranks) {
            ready = false;
            break;
          }
        }
        if (!ready) continue;
        for (int m : o.group.ranks)
          if (!same_attrs(op_of(m), o)) {
            std::string msg = cat("schedule: collective mismatch on communicator ", o.group.key(), ": the members issued different collectives:");
            for (int k : o.group.ranks) msg += "\n  " + where(progs, k, cur[k]);
            throw Error(msg);
          }
        for (int m : o.group.ranks) advance(m);
        progress = true;
        continue;
      }
      for (size_t k = 0; k < o.p2p.size(); k++) {
        if (cur[r].done[k]) continue;
        const IrTransfer& t = o.p2p[k];
        int q = t.peer;
        if (cur[q].finished())
          fail("schedule: rank ", q, " finished its program while ", where(progs, r, cur[r]), " waits for it");
        const IrOp& qo = op_of(q);
        if (qo.op != "p2p") continue;
        for (size_t j = 0; j < qo.p2p.size(); j++) {
          const IrTransfer& u = qo.p2p[j];
          if (cur[q].done[j] || u.peer != r || u.send == t.send) continue;
          if (u.shape != t.shape)
            fail("schedule: p2p shape mismatch between ", where(progs, r, cur[r]), " and ", where(progs, q, cur[q]));
          cur[r].done[k] = true;
          cur[q].done[j] = true;
          progress = true;
          break;
        }
      }
      for (int x : {r}) {
        bool all = true;
        for (bool d : cur[x].done) all = all && d;
        if (all) {
          advance(x);
          progress = true;
        }
      }
      // A peer whose batch this completed moves on too.
      for (const auto& t : o.p2p) {
        int q = t.peer;
        if (cur[q].finished() || op_of(q).op != "p2p") continue;
        bool all = true;
        for (bool d : cur[q].done) all = all && d;
        if (all) {
          advance(q);
          progress = true;
        }
      }
    }
    if (all_done) return;
    if (!progress) {
      std::string msg = "schedule: no rank can make progress (the programs would hang on NCCL):";
      for (int r = 0; r < n; r++)
        if (!cur[r].finished()) msg += "\n  " + where(progs, r, cur[r]) + " waits";
      throw Error(msg);
    }
  }
}

}  // namespace spx
