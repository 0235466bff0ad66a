#include "program.hpp"

#include <set>

#include "error.hpp"

namespace spx {

const std::map<std::string, OpSpec>& op_specs() {
  static const std::map<std::string, OpSpec> s = {
      {"zeros", {OpClass::Local, 0, 1, {"shape"}, {}, {}}},
      {"copy", {OpClass::Local, 1, 1, {}, {}, {}}},
      {"add", {OpClass::Local, 2, 1, {}, {}, {}}},
      {"scale", {OpClass::Local, 1, 1, {}, {"c"}, {}}},
      {"reshape", {OpClass::Local, 1, 1, {"shape"}, {}, {}}},
      {"narrow", {OpClass::Local, 1, 1, {"dim", "start", "len"}, {}, {}}},
      {"pad", {OpClass::Local, 1, 1, {"dim", "before", "after"}, {}, {}}},
      {"concat", {OpClass::Local, -1, 1, {"dim"}, {}, {}}},
      {"split", {OpClass::Local, 1, -1, {"dim", "sizes"}, {}, {}}},
      {"flat_chunk", {OpClass::Local, 1, 1, {"parts", "index"}, {}, {}}},
      {"embedding", {OpClass::Local, 2, 1, {"offset"}, {}, {}}},
      {"embedding_grad", {OpClass::Local, 2, 1, {"offset", "rows"}, {}, {}}},
      {"linear", {OpClass::Local, 2, 1, {}, {}, {}}},
      {"linear_grad_input", {OpClass::Local, 2, 1, {}, {}, {}}},
      {"linear_grad_weight", {OpClass::Local, 2, 1, {}, {}, {}}},
      {"rmsnorm", {OpClass::Local, 2, 2, {}, {}, {}}},
      {"rmsnorm_grad", {OpClass::Local, 4, 2, {}, {}, {}}},
      {"rope", {OpClass::Local, 1, 1, {"pos"}, {}, {}}},
      {"rope_grad", {OpClass::Local, 1, 1, {"pos"}, {}, {}}},
      {"attention", {OpClass::Local, 3, 2, {"cu"}, {}, {}}},
      {"attention_grad", {OpClass::Local, 5, 3, {"cu"}, {}, {}}},
      {"swiglu", {OpClass::Local, 2, 1, {}, {}, {}}},
      {"swiglu_grad", {OpClass::Local, 3, 2, {}, {}, {}}},
      {"vocab_max", {OpClass::Local, 1, 1, {"valid"}, {}, {}}},
      {"vocab_sumexp", {OpClass::Local, 2, 1, {"valid"}, {}, {}}},
      {"vocab_target", {OpClass::Local, 2, 1, {"offset", "valid"}, {}, {}}},
      {"ce_loss", {OpClass::Local, 4, 1, {}, {}, {}}},
      {"ce_grad", {OpClass::Local, 5, 1, {"offset", "valid"}, {"scale"}, {}}},
      {"all_reduce", {OpClass::Collective, 1, 1, {}, {}, {"reduce"}}},
      {"all_gather", {OpClass::Collective, 1, 1, {"dim"}, {}, {}}},
      {"reduce_scatter", {OpClass::Collective, 1, 1, {"dim"}, {}, {}}},
      {"broadcast", {OpClass::Collective, -2, 1, {"root"}, {}, {}}},
      {"all_gather_flat", {OpClass::Collective, 1, 1, {"shape"}, {}, {}}},
      {"p2p", {OpClass::PointToPoint, 0, 0, {}, {}, {}}},
      {"trace", {OpClass::Meta, 1, 0, {}, {}, {}}},
      {"free", {OpClass::Meta, -1, 0, {}, {}, {}}},
  };
  return s;
}

const char* op_class_name(OpClass c) {
  switch (c) {
    case OpClass::Local: return "local";
    case OpClass::Collective: return "collective";
    case OpClass::PointToPoint: return "p2p";
    case OpClass::Meta: return "meta";
  }
  return "?";
}

namespace {

std::vector<std::string> strings(const Json* j, const std::string& what) {
  std::vector<std::string> out;
  if (!j || j->is_null()) return out;
  for (const Json& x : j->as_array(what)) out.push_back(x.as_string(what));
  return out;
}

std::vector<int64_t> int_list(const Json* j, const std::string& what) {
  std::vector<int64_t> out;
  if (!j || j->is_null()) return out;
  for (const Json& x : j->as_array(what)) out.push_back(x.as_int(what));
  return out;
}

std::map<std::string, int64_t> int_map(const Json* j, const std::string& what) {
  std::map<std::string, int64_t> out;
  if (!j || j->is_null()) return out;
  for (const auto& kv : j->as_object(what)) out[kv.first] = kv.second.as_int(what + "." + kv.first);
  return out;
}

IrGroup parse_group(const Json& j, const std::string& what) {
  IrGroup g;
  g.name = j.at("name", what).as_string(what + ".name");
  for (int64_t r : int_list(j.find("ranks"), what + ".ranks")) g.ranks.push_back(static_cast<int>(r));
  return g;
}

IrOp parse_op(const Json& j, const std::string& what) {
  IrOp o;
  o.op = j.at("op", what).as_string(what + ".op");
  o.in = strings(j.find("in"), what + ".in");
  o.out = strings(j.find("out"), what + ".out");
  if (const Json* a = j.find("attr"); a && !a->is_null()) {
    if (const Json* x = a->find("ints"); x && !x->is_null())
      for (const auto& kv : x->as_object(what + ".attr.ints")) o.ints[kv.first] = int_list(&kv.second, what + ".attr.ints." + kv.first);
    if (const Json* x = a->find("floats"); x && !x->is_null())
      for (const auto& kv : x->as_object(what + ".attr.floats")) o.floats[kv.first] = kv.second.as_double(what + ".attr.floats." + kv.first);
    if (const Json* x = a->find("strs"); x && !x->is_null())
      for (const auto& kv : x->as_object(what + ".attr.strs")) o.strs[kv.first] = kv.second.as_string(what + ".attr.strs." + kv.first);
  }
  if (const Json* g = j.find("group"); g && !g->is_null()) {
    o.has_group = true;
    o.group = parse_group(*g, what + ".group");
  }
  if (const Json* p = j.find("p2p"); p && !p->is_null())
    for (const Json& t : p->as_array(what + ".p2p")) {
      IrTransfer x;
      x.send = t.at("send", what + ".p2p").as_bool(what + ".p2p.send");
      x.peer = static_cast<int>(t.at("peer", what + ".p2p").as_int(what + ".p2p.peer"));
      x.sym = t.at("sym", what + ".p2p").as_string(what + ".p2p.sym");
      x.shape = int_list(t.find("shape"), what + ".p2p.shape");
      o.p2p.push_back(x);
    }
  if (const Json* t = j.find("trace"); t && !t->is_null()) {
    o.has_trace = true;
    const std::string w = what + ".trace";
    o.trace.key = t->at("key", w).as_string(w + ".key");
    o.trace.name = t->at("name", w).as_string(w + ".name");
    o.trace.kind = t->at("kind", w).as_string(w + ".kind");
    o.trace.order = t->at("order", w).as_int(w + ".order");
    if (const Json* x = t->find("place")) o.trace.place = x->as_string(w + ".place");
    o.trace.shape = int_list(t->find("shape"), w + ".shape");
    o.trace.coord = int_map(t->find("coord"), w + ".coord");
  }
  if (const Json* r = j.find("role")) o.role = r->as_string(what + ".role");
  return o;
}

}  // namespace

int IrGroup::index_of(int r) const {
  for (size_t i = 0; i < ranks.size(); i++)
    if (ranks[i] == r) return static_cast<int>(i);
  return -1;
}

std::string IrGroup::key() const {
  std::string s = name + "[";
  for (size_t i = 0; i < ranks.size(); i++) s += (i ? " " : "") + std::to_string(ranks[i]);
  return s + "]";
}

std::string IrOp::str() const {
  std::string s = op;
  if (auto it = strs.find("reduce"); it != strs.end()) s += "(" + it->second + ")";
  if (auto it = ints.find("dim"); it != ints.end() && !it->second.empty()) s += "(dim=" + std::to_string(it->second[0]) + ")";
  if (has_group) s += " " + group.key();
  for (const auto& t : p2p) {
    s += t.send ? " [send " : " [recv ";
    s += t.sym + "[";
    for (size_t i = 0; i < t.shape.size(); i++) s += (i ? " " : "") + std::to_string(t.shape[i]);
    s += t.send ? "] to " : "] from ";
    s += std::to_string(t.peer) + "]";
  }
  auto list = [](const std::vector<std::string>& v) {
    std::string r = "[";
    for (size_t i = 0; i < v.size(); i++) r += (i ? " " : "") + v[i];
    return r + "]";
  };
  if (!in.empty()) s += " " + list(in);
  if (!out.empty()) s += " -> " + list(out);
  if (!role.empty()) s += " (" + role + ")";
  return s;
}

OpClass op_class(const std::string& op) {
  auto it = op_specs().find(op);
  if (it == op_specs().end()) fail("unknown op \"", op, "\"");
  return it->second.cls;
}

void validate_program(const Program& p, const std::string& what) {
  auto hdr = [&](const std::string& msg) { return Error(cat(what, ": rank ", p.rank, ": ", msg)); };
  if (p.world < 1 || p.rank < 0 || p.rank >= p.world) throw hdr(cat("rank ", p.rank, " outside world ", p.world));
  if (p.mesh_axes.size() != p.mesh_shape.size()) throw hdr("mesh axes and shape differ in length");
  std::set<std::string> defined, keys;
  for (const auto& s : p.inputs)
    if (!defined.insert(s).second) throw hdr("input \"" + s + "\" listed twice");
  for (size_t i = 0; i < p.ops.size(); i++) {
    const IrOp& o = p.ops[i];
    auto bad = [&](const std::string& msg) { return Error(cat(what, ": rank ", p.rank, " op ", i, " ", o.str(), ": ", msg)); };
    auto it = op_specs().find(o.op);
    if (it == op_specs().end()) throw bad("unknown op \"" + o.op + "\"");
    const OpSpec& sp = it->second;
    int want_in = sp.in;
    if (sp.in == -2) {
      want_in = 0;
      auto r = o.ints.find("root");
      if (o.has_group && r != o.ints.end() && r->second.size() == 1 && r->second[0] >= 0 &&
          r->second[0] < static_cast<int64_t>(o.group.ranks.size()) && o.group.ranks[r->second[0]] == p.rank)
        want_in = 1;
    }
    if (want_in == -1 && o.in.empty()) throw bad("takes at least one input");
    if (want_in >= 0 && sp.cls != OpClass::PointToPoint && static_cast<int>(o.in.size()) != want_in)
      throw bad(cat("takes ", want_in, " inputs, has ", o.in.size()));
    if (sp.out == -1 && o.out.empty()) throw bad("gives at least one output");
    if (sp.out >= 0 && static_cast<int>(o.out.size()) != sp.out) throw bad(cat("gives ", sp.out, " outputs, has ", o.out.size()));
    if (sp.cls == OpClass::PointToPoint && (o.p2p.empty() || !o.in.empty())) throw bad("p2p takes transfers, not inputs");
    if (sp.cls == OpClass::Collective && !o.has_group) throw bad("a collective needs a group");
    for (const auto& k : sp.ints)
      if (!o.ints.count(k) || o.ints.at(k).empty()) throw bad("missing integer attribute \"" + k + "\"");
    for (const auto& k : sp.floats)
      if (!o.floats.count(k)) throw bad("missing float attribute \"" + k + "\"");
    for (const auto& k : sp.strs)
      if (!o.strs.count(k)) throw bad("missing string attribute \"" + k + "\"");
    for (const auto& s : o.in)
      if (!defined.count(s)) throw bad("reads \"" + s + "\" before it is defined (or after it is freed)");
    if (sp.cls == OpClass::Collective) {
      if (o.group.name.empty() || o.group.ranks.empty()) throw bad("group needs a name and ranks");
      std::set<int> seen;
      for (int r : o.group.ranks)
        if (r < 0 || r >= p.world || !seen.insert(r).second) throw bad(cat("group ", o.group.key(), ": rank ", r, " out of world ", p.world, " or repeated"));
      if (!seen.count(p.rank)) throw bad(cat("group ", o.group.key(), " does not contain this rank ", p.rank));
      if (o.op == "all_reduce" && o.s("reduce") != "sum" && o.s("reduce") != "max") throw bad("reduce must be sum or max");
    }
    if (sp.cls == OpClass::PointToPoint) {
      for (const auto& t : o.p2p) {
        if (t.peer < 0 || t.peer >= p.world || t.peer == p.rank) throw bad(cat("peer ", t.peer, " outside world ", p.world, " or self"));
        for (int64_t d : t.shape)
          if (d < 0) throw bad("negative dim in a transfer shape");
        if (t.send && !defined.count(t.sym)) throw bad("sends \"" + t.sym + "\" before it is defined");
      }
      for (const auto& t : o.p2p)
        if (!t.send) {
          if (t.sym.empty() || defined.count(t.sym)) throw bad("receives into \"" + t.sym + "\", which is empty or already defined");
          defined.insert(t.sym);
        }
    }
    if (o.op == "trace") {
      if (!o.has_trace || o.trace.key.empty() || o.trace.name.empty()) throw bad("trace needs a tag with a key and a name");
      if (!keys.insert(o.trace.key).second) throw bad("trace key \"" + o.trace.key + "\" used twice");
    }
    if (o.op == "free")
      for (const auto& s : o.in) defined.erase(s);
    for (const auto& s : o.out)
      if (s.empty() || !defined.insert(s).second) throw bad("defines \"" + s + "\", which is empty or already defined");
  }
}

Program parse_program(const std::string& text, const std::string& what) {
  Json j = Json::parse(text, what);
  Program p;
  try {
    if (j.at("format", "program").as_string("format") != kProgramFormat)
      fail("format is \"", j.at("format", "program").as_string("format"), "\", want \"", kProgramFormat, "\"");
    if (j.at("version", "program").as_int("version") != kProgramVersion)
      fail("version ", j.at("version", "program").as_int("version"), ", this executor knows ", kProgramVersion);
    if (const Json* x = j.find("plan")) p.plan = x->as_string("plan");
    p.rank = static_cast<int>(j.at("rank", "program").as_int("rank"));
    p.world = static_cast<int>(j.at("world", "program").as_int("world"));
    const Json& mesh = j.at("mesh", "program");
    p.mesh_axes = strings(mesh.find("axes"), "mesh.axes");
    p.mesh_shape = int_list(mesh.find("shape"), "mesh.shape");
    p.coord = int_map(j.find("coord"), "coord");
    p.inputs = strings(j.find("inputs"), "inputs");
    const Json* ops = j.find("ops");
    if (ops && !ops->is_null()) {
      size_t i = 0;
      for (const Json& o : ops->as_array("ops")) p.ops.push_back(parse_op(o, cat("ops[", i++, "]")));
    }
  } catch (const Error& e) {
    fail(what, ": ", e.what());
  }
  validate_program(p, what);
  return p;
}

}  // namespace spx
