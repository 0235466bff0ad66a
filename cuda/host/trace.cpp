#include "trace.hpp"

#include <fnmatch.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <regex>

#include "error.hpp"

namespace spx {

namespace {
Json int_list(const std::vector<int64_t>& v) {
  Json a = Json::array();
  for (int64_t x : v) a.push(Json::integer(x));
  return a;
}

Json coord_json(const std::map<std::string, int64_t>& m) {
  Json o = Json::object();
  for (const auto& kv : m) o.set(kv.first, Json::integer(kv.second));  // std::map: sorted, like Go
  return o;
}

std::vector<int64_t> ints(const Json& j, const std::string& what) {
  std::vector<int64_t> out;
  for (const Json& x : j.as_array(what)) out.push_back(x.as_int(what));
  return out;
}

std::map<std::string, int64_t> coord_from(const Json& j, const std::string& what) {
  std::map<std::string, int64_t> out;
  for (const auto& kv : j.as_object(what)) out[kv.first] = kv.second.as_int(what + "." + kv.first);
  return out;
}
}  // namespace

bool valid_kind(const std::string& k) {
  static const char* kinds[] = {"input", "activation", "activation_grad", "param", "param_grad", "loss", "output"};
  for (const char* x : kinds)
    if (k == x) return true;
  return false;
}

void check_placement(const std::string& place, const std::vector<std::string>& axes) {
  if (place.empty()) return;
  static const std::regex item(R"(([a-z][a-z0-9_]*)=(replicate|partial|stage|shard\(([0-9]+)(,block=([0-9]+))?\)))");
  size_t start = 0;
  std::vector<std::string> seen;
  while (start <= place.size()) {
    size_t comma = place.find(',', start);
    // a comma inside shard(d,block=b) belongs to the item
    size_t paren = place.find('(', start);
    if (paren != std::string::npos && paren < comma) comma = place.find(',', place.find(')', paren));
    std::string it = place.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    std::smatch m;
    if (!std::regex_match(it, m, item)) fail("placement \"", place, "\": bad item \"", it, "\"");
    std::string axis = m[1];
    bool known = false;
    for (const auto& a : axes) known = known || a == axis;
    if (!known) fail("placement \"", place, "\": axis \"", axis, "\" is not a mesh axis");
    for (const auto& s : seen)
      if (s == axis) fail("placement \"", place, "\": axis \"", axis, "\" listed twice");
    seen.push_back(axis);
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
}

Json TraceMeta::to_json() const {
  // Field order and omitempty rules of trace.Meta / trace.TensorMeta.
  Json j = Json::object();
  j.set("format", Json::string(kTraceFormat));
  j.set("version", Json::integer(kTraceVersion));
  j.set("rank", Json::integer(rank));
  j.set("world", Json::integer(world));
  Json mesh = Json::object();
  Json axes = Json::array();
  for (const auto& a : mesh_axes) axes.push(Json::string(a));
  mesh.set("axes", std::move(axes));
  mesh.set("shape", int_list(mesh_shape));
  j.set("mesh", std::move(mesh));
  if (!coord.empty()) j.set("coord", coord_json(coord));
  if (!producer.empty()) j.set("producer", Json::string(producer));
  if (!plan.empty()) j.set("plan", Json::string(plan));
  if (seed != 0) j.set("seed", Json::uinteger(seed));
  if (!extra.empty()) {
    Json e = Json::object();
    for (const auto& kv : extra) e.set(kv.first, Json::string(kv.second));
    j.set("extra", std::move(e));
  }
  Json ts = Json::object();
  for (const auto& kv : tensors) {
    const TensorMeta& t = kv.second;
    Json o = Json::object();
    o.set("name", Json::string(t.name));
    o.set("kind", Json::string(t.kind));
    o.set("order", Json::integer(t.order));
    if (!t.place.empty()) o.set("place", Json::string(t.place));
    if (!t.shape.empty()) o.set("shape", int_list(t.shape));
    if (!t.coord.empty()) o.set("coord", coord_json(t.coord));
    ts.set(kv.first, std::move(o));
  }
  j.set("tensors", std::move(ts));
  return j;
}

TraceMeta TraceMeta::from_json(const Json& j) {
  TraceMeta m;
  if (j.at("format", "metadata").as_string("format") != kTraceFormat) fail("metadata: format is not ", kTraceFormat);
  if (j.at("version", "metadata").as_int("version") != kTraceVersion) fail("metadata: version is not ", kTraceVersion);
  m.rank = j.at("rank", "metadata").as_int("rank");
  m.world = j.at("world", "metadata").as_int("world");
  const Json& mesh = j.at("mesh", "metadata");
  for (const Json& a : mesh.at("axes", "mesh").as_array("mesh.axes")) m.mesh_axes.push_back(a.as_string("mesh.axes"));
  m.mesh_shape = ints(mesh.at("shape", "mesh"), "mesh.shape");
  if (const Json* c = j.find("coord")) m.coord = coord_from(*c, "coord");
  if (const Json* p = j.find("producer")) m.producer = p->as_string("producer");
  if (const Json* p = j.find("plan")) m.plan = p->as_string("plan");
  if (const Json* s = j.find("seed")) m.seed = s->as_uint("seed");
  if (const Json* e = j.find("extra"))
    for (const auto& kv : e->as_object("extra")) m.extra[kv.first] = kv.second.as_string("extra." + kv.first);
  for (const auto& kv : j.at("tensors", "metadata").as_object("tensors")) {
    const std::string what = "tensors." + kv.first;
    TensorMeta t;
    t.name = kv.second.at("name", what).as_string(what + ".name");
    t.kind = kv.second.at("kind", what).as_string(what + ".kind");
    if (!valid_kind(t.kind)) fail(what, ".kind: unknown kind \"", t.kind, "\"");
    t.order = kv.second.at("order", what).as_int(what + ".order");
    if (const Json* p = kv.second.find("place")) t.place = p->as_string(what + ".place");
    if (const Json* s = kv.second.find("shape")) t.shape = ints(*s, what + ".shape");
    if (const Json* c = kv.second.find("coord")) t.coord = coord_from(*c, what + ".coord");
    m.tensors[kv.first] = t;
  }
  return m;
}

void TraceWriter::check_add(const std::string& key, const TensorMeta& tm, DType d, const std::vector<int64_t>& shape, uint64_t nbytes) {
  if (meta_.tensors.count(key)) fail("trace writer: tensor key \"", key, "\" added twice");
  int64_t numel = 1;
  for (int64_t x : shape) numel *= x;
  if (static_cast<uint64_t>(numel) * dtype_size(d) != nbytes)
    fail("trace writer: tensor \"", key, "\": ", nbytes, " bytes for ", numel, " elements of ", dtype_name(d));
  if (!valid_kind(tm.kind)) fail("trace writer: tensor \"", key, "\": unknown kind \"", tm.kind, "\"");
  try {
    check_placement(tm.place, meta_.mesh_axes);
  } catch (const Error& e) {
    fail("trace writer: tensor \"", key, "\": ", e.what());
  }
}

void TraceWriter::add(const std::string& key, const TensorMeta& tm, DType d, const std::vector<int64_t>& shape, std::vector<uint8_t> bytes) {
  check_add(key, tm, d, shape, bytes.size());
  meta_.tensors[key] = tm;
  tensors_.push_back(StWrite{key, d, shape, std::move(bytes)});
}

void TraceWriter::spill_to(const std::string& path) {
  if (spill_) fail("trace writer: already spilling to ", spill_path_);
  spill_ = std::fopen(path.c_str(), "w+b");
  if (!spill_) fail(path, ": ", std::strerror(errno));
  spill_path_ = path;
}

void TraceWriter::add_stream(const std::string& key, const TensorMeta& tm, DType d, const std::vector<int64_t>& shape, uint64_t nbytes,
                             const std::function<void(FILE*)>& fill) {
  if (!spill_) fail("trace writer: add_stream without spill_to");
  check_add(key, tm, d, shape, nbytes);
  fill(spill_);
  if (std::fflush(spill_) != 0) fail(spill_path_, ": write error");
  long end = std::ftell(spill_);
  if (end < 0 || static_cast<uint64_t>(end) != spill_off_ + nbytes) {
    std::fseek(spill_, static_cast<long>(spill_off_), SEEK_SET);  // the next tensor overwrites the partial one
    fail("trace writer: tensor \"", key, "\": ", static_cast<long long>(end) - static_cast<long long>(spill_off_), " bytes spilled, want ", nbytes);
  }
  meta_.tensors[key] = tm;
  StWrite w{key, d, shape, {}};
  w.spilled = true;
  w.spill_off = spill_off_;
  w.nbytes = nbytes;
  tensors_.push_back(std::move(w));
  spill_off_ += nbytes;
}

TraceWriter::TraceWriter(TraceWriter&& o) noexcept
    : meta_(std::move(o.meta_)), tensors_(std::move(o.tensors_)), spill_path_(std::move(o.spill_path_)), spill_(o.spill_),
      spill_off_(o.spill_off_) {
  o.spill_ = nullptr;
}

TraceWriter::~TraceWriter() {
  if (spill_) {
    std::fclose(spill_);
    std::remove(spill_path_.c_str());
  }
}

std::vector<uint8_t> TraceWriter::render() const {
  std::map<std::string, std::string> md;
  md[kTraceMetadataKey] = meta_.to_json().dump();
  return render_safetensors(md, tensors_);
}

std::string TraceWriter::file_name(int64_t rank) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "rank-%05lld.safetensors", static_cast<long long>(rank));
  return buf;
}

std::string TraceWriter::write_dir(const std::string& dir) const {
  std::string path = dir + "/" + file_name(meta_.rank);
  std::map<std::string, std::string> md;
  md[kTraceMetadataKey] = meta_.to_json().dump();
  if (spill_ && std::fflush(spill_) != 0) fail(spill_path_, ": write error");
  write_safetensors(path, md, tensors_, spill_path_);
  return path;
}

bool dump_matches(const std::vector<std::string>& globs, const std::string& name) {
  for (const auto& gl : globs)
    if (fnmatch(gl.c_str(), name.c_str(), 0) == 0) return true;
  return false;
}

TraceMeta read_trace_meta(const StFile& f) {
  auto it = f.metadata.find(kTraceMetadataKey);
  if (it == f.metadata.end()) fail(f.path, ": __metadata__ has no \"spcheck\" document");
  try {
    return TraceMeta::from_json(Json::parse(it->second, "metadata"));
  } catch (const Error& e) {
    fail(f.path, ": ", e.what());
  }
}

}  // namespace spx
