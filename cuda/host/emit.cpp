#include "emit.hpp"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sys/stat.h>

#include "error.hpp"
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
