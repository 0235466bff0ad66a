// trace.hpp: spcheck trace files (docs/trace-format.md): one safetensors file per rank whose
// __metadata__["spcheck"] is the JSON trace.Meta. The writer renders the document with Go's
// field order and escaping, so a file written here is byte-identical to trace.Writer's for the
// same tensors and metadata.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "dtype.hpp"
#include "json.hpp"
#include "safetensors.hpp"

namespace spx {

constexpr const char* kTraceFormat = "spcheck-trace";
constexpr int kTraceVersion = 1;
constexpr const char* kTraceMetadataKey = "spcheck";

struct TensorMeta {
  std::string name;
  std::string kind;  // input, activation, activation_grad, param, param_grad, loss, output
  int64_t order = 0;
  std::string place;
  std::vector<int64_t> shape;  // global shape; empty = not given
  std::map<std::string, int64_t> coord;
};

struct TraceMeta {
  int64_t rank = 0, world = 1;
  std::vector<std::string> mesh_axes;
  std::vector<int64_t> mesh_shape;
  std::map<std::string, int64_t> coord;
  std::string producer, plan;
  uint64_t seed = 0;
  std::map<std::string, std::string> extra;
  std::map<std::string, TensorMeta> tensors;

  Json to_json() const;
  static TraceMeta from_json(const Json& j);  // validates kinds and fields used by the executor
};

bool valid_kind(const std::string& k);
// check_placement validates the placement grammar against the mesh axes.
void check_placement(const std::string& place, const std::vector<std::string>& axes);

// TraceWriter collects one rank's tensors and renders its trace file.
class TraceWriter {
 public:
  explicit TraceWriter(TraceMeta meta) : meta_(std::move(meta)) {}
  // add stores raw little-endian bytes of dtype d with the given local shape.
  void add(const std::string& key, const TensorMeta& tm, DType d, const std::vector<int64_t>& shape, std::vector<uint8_t> bytes);
  // spill_to makes add_stream write tensors' bytes to the file at path as they come, so the
  // writer holds none of them; write_dir copies them into the trace file (in key order: the
  // file is byte-identical to render's) and removes the spill file.
  void spill_to(const std::string& path);
  // add_stream records a tensor of `nbytes` bytes that fill writes to the spill file (fill is
  // handed the open FILE*; it must write exactly nbytes).
  void add_stream(const std::string& key, const TensorMeta& tm, DType d, const std::vector<int64_t>& shape, uint64_t nbytes,
                  const std::function<void(FILE*)>& fill);
  ~TraceWriter();
  TraceWriter(TraceWriter&&) noexcept;
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;
  std::vector<uint8_t> render() const;
  // write_dir writes dir/rank-%05d.safetensors (dir must exist) and returns the path.
  std::string write_dir(const std::string& dir) const;
  static std::string file_name(int64_t rank);
  TraceMeta& meta() { return meta_; }

 private:
  void check_add(const std::string& key, const TensorMeta& tm, DType d, const std::vector<int64_t>& shape, uint64_t nbytes);
  TraceMeta meta_;
  std::vector<StWrite> tensors_;
  std::string spill_path_;
  FILE* spill_ = nullptr;
  uint64_t spill_off_ = 0;
};

// dump_matches reports whether a logical tensor name matches one of the glob patterns
// (fnmatch without flags: `*` also matches `/`, so grad/* is every parameter grad).
bool dump_matches(const std::vector<std::string>& globs, const std::string& name);

// read_trace_meta reads a trace file's metadata document.
TraceMeta read_trace_meta(const StFile& f);

}  // namespace spx
