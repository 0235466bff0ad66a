#include "emit.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sys/stat.h>

#include "error.hpp"
#include "json.hpp"
#include "rng.hpp"
#include "rng_core.hpp"
#include "safetensors.hpp"
#include "trace.hpp"

namespace spx {

static std::string rank_name(int rank, const char* ext) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "rank-%05d.%s", rank, ext);
  return buf;
}

std::string program_path(const std::string& dir, int rank) { return dir + "/programs/" + rank_name(rank, "json"); }

std::string Emitted::init_path(int rank) const { return dir + "/init/" + rank_name(rank, "safetensors"); }

std::string Emitted::generated_path(int rank) const { return dir + "/generate/" + rank_name(rank, "json"); }

std::vector<int64_t> GenTensor::local_shape() const {
  std::vector<int64_t> s = shape;
  s[dim] = len;
  s[0] += pad;
  return s;
}

std::map<std::string, GenTensor> load_generated(const Emitted& e, int rank) {
  std::map<std::string, GenTensor> out;
  std::string path = e.generated_path(rank);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return out;
  auto b = read_file(path);
  Json j = Json::parse(std::string(b.begin(), b.end()), path);
  if (j.at("format", path).as_string(path + ": format") != "spcheck-generate" || j.at("version", path).as_int(path + ": version") != 1)
    fail(path, ": not a version 1 spcheck-generate manifest");
  for (const auto& kv : j.at("tensors", path).as_object(path + ": tensors")) {
    std::string w = path + ": " + kv.first;
    const Json& t = kv.second;
    GenTensor g;
    g.name = t.at("name", w).as_string(w + ".name");
    for (const Json& d : t.at("shape", w).as_array(w + ".shape")) g.shape.push_back(d.as_int(w + ".shape"));
    g.dim = static_cast<int>(t.at("dim", w).as_int(w + ".dim"));
    g.start = t.at("start", w).as_int(w + ".start");
    g.len = t.at("len", w).as_int(w + ".len");
    if (const Json* p = t.find("pad")) g.pad = p->as_int(w + ".pad");
    const Json& r = t.at("rule", w);
    g.norm = r.at("norm", w + ".rule").as_bool(w + ".rule.norm");
    if (const Json* x = r.find("std")) g.std_ = x->as_double(w + ".rule.std");
    if (const Json* x = r.find("fan_in")) g.fan_in = x->as_int(w + ".rule.fan_in");
    bool ok = !g.shape.empty() && g.dim >= 0 && g.dim < static_cast<int>(g.shape.size()) && g.start >= 0 && g.len >= 0 &&
              g.pad >= 0 && (g.pad == 0 || g.dim == 0) && (g.norm || g.fan_in >= 1);
    for (int64_t d : g.shape) ok = ok && d >= 0;
    if (ok) ok = g.start + g.len <= g.shape[g.dim];
    if (!ok) fail(w, ": shard [", g.start, "+", g.len, "] of dim ", g.dim, " pad ", g.pad, " fan-in ", g.fan_in, " does not fit its shape");
    out[kv.first] = g;
  }
  return out;
}

std::vector<double> generate_host(const GenTensor& g, uint64_t seed) {
  RNG rng(seed, g.name);
  std::vector<int64_t> ls = g.local_shape();
  int64_t n = 1, outer = 1, inner = 1;
  for (int64_t d : ls) n *= d;
  for (int i = 0; i < g.dim; i++) outer *= g.shape[i];
  for (size_t i = g.dim + 1; i < g.shape.size(); i++) inner *= g.shape[i];
  std::vector<double> out(static_cast<size_t>(n), 0.0);
  size_t k = 0;
  for (int64_t o = 0; o < outer; o++)
    for (int64_t r = 0; r < g.len; r++)
      for (int64_t c = 0; c < inner; c++)
        out[k++] = rngcore::init_value(g.norm, g.std_, static_cast<double>(g.fan_in),
                                       rng.normal(static_cast<uint64_t>((o * g.shape[g.dim] + g.start + r) * inner + c)));
  return out;  // the pad rows (dim 0, after every generated row) stay zero
}

std::string plan_value(const std::string& plan, const std::string& key) {
  size_t start = 0;
  while (start <= plan.size()) {
    size_t comma = plan.find(',', start);
    std::string item = plan.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t eq = item.find('=');
    if (eq != std::string::npos && item.substr(0, eq) == key) return item.substr(eq + 1);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return "";
}

void trace_mesh(const std::vector<Program>& progs, std::vector<std::string>* axes, std::vector<int64_t>* shape) {
  *axes = progs.at(0).mesh_axes;
  *shape = progs.at(0).mesh_shape;
  std::map<std::string, int64_t> virt;  // axis → largest coordinate + 1
  std::vector<std::string> order;
  for (const Program& p : progs)
    for (const IrOp& o : p.ops)
      if (o.has_trace)
        for (const auto& kv : o.trace.coord)
          if (std::find(axes->begin(), axes->end(), kv.first) == axes->end()) {
            if (!virt.count(kv.first)) order.push_back(kv.first);
            virt[kv.first] = std::max(virt[kv.first], kv.second + 1);
          }
  size_t at = axes->empty() ? 0 : axes->size() - 1;
  for (const auto& a : order) {
    axes->insert(axes->begin() + at, a);
    shape->insert(shape->begin() + at, virt[a]);
    at++;
  }
}

// kMaxWorld bounds how many program files are looked for.
constexpr int kMaxWorld = 4096;

Emitted load_emit(const std::string& dir) {
  Emitted e;
  e.dir = dir;
  struct stat st;
  if (stat((dir + "/programs").c_str(), &st) != 0 || stat((dir + "/init").c_str(), &st) != 0)
    fail(dir, ": not an emitted plan (want programs/ and init/, as spcheck plan --emit writes)");
  for (int r = 0; r < kMaxWorld; r++) {
    std::string pp = program_path(dir, r);
    if (stat(pp.c_str(), &st) != 0) {
      if (r == 0) fail(pp, ": missing");
      break;
    }
    auto b = read_file(pp);
    Program p = parse_program(std::string(b.begin(), b.end()), pp);
    if (p.rank != r) fail(pp, ": program says rank ", p.rank);
    e.programs.push_back(std::move(p));
  }
  e.info.world = static_cast<int>(e.programs.size());
  for (const Program& p : e.programs) {
    if (p.world != e.info.world)
      fail(program_path(dir, p.rank), ": program of world ", p.world, " in a directory of ", e.info.world, " programs");
    if (p.plan != e.programs[0].plan) fail(program_path(dir, p.rank), ": plan differs from rank 0's");
  }
  e.info.plan = e.programs[0].plan;
  std::string dt = plan_value(e.info.plan, "dtype");
  e.info.dtype = dt.empty() ? DType::F64 : parse_dtype(dt);
  StFile init0 = StFile::read(e.init_path(0));
  e.info.seed = read_trace_meta(init0).seed;
  trace_mesh(e.programs, &e.info.trace_axes, &e.info.trace_shape);
  return e;
}

}  // namespace spx
