// safetensors.hpp: reading and writing safetensors files (8-byte little-endian header length,
// JSON header padded with spaces to a multiple of 8, then the raw data section). The reader
// refuses what trace/reader.go refuses at the safetensors level: short files, oversized or
// non-object headers, unknown dtypes, shapes that disagree with their byte span, offsets
// outside the data section, overlapping tensors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dtype.hpp"

namespace spx {

struct StTensor {
  std::string key;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // relative to the data section
  int64_t numel() const;
};

class StFile {
 public:
  // read loads and validates the whole file (the executor's files are small).
  static StFile read(const std::string& path);
  // parse validates a file held in memory; name is used in errors.
  static StFile parse(std::vector<uint8_t> bytes, const std::string& name);

  std::string path;
  std::map<std::string, std::string> metadata;
  std::vector<StTensor> tensors;  // sorted by key

  const StTensor* find(const std::string& key) const;
  const StTensor& at(const std::string& key) const;  // throws naming the file and key
  const uint8_t* bytes(const StTensor& t) const { return raw_.data() + data_off_ + t.begin; }
  std::vector<double> values(const StTensor& t) const { return decode(t.dtype, bytes(t), static_cast<size_t>(t.numel())); }

 private:
  std::vector<uint8_t> raw_;
  size_t data_off_ = 0;
};

// StWrite is one tensor to write: its bytes in memory, or (spilled) `nbytes` bytes at offset
// `spill_off` of a spill file the writer was handed.
struct StWrite {
  std::string key;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
  bool spilled = false;
  uint64_t spill_off = 0, nbytes = 0;
  uint64_t size() const { return spilled ? nbytes : bytes.size(); }
};

// render_safetensors lays tensors out contiguously in key order, header keys sorted (as
// trace.Writer does, so equal inputs give byte-identical files).
std::vector<uint8_t> render_safetensors(const std::map<std::string, std::string>& metadata, const std::vector<StWrite>& tensors);
// write_safetensors writes the same bytes to path (through path.tmp and a rename) without
// rendering the file in memory first; spilled tensors are copied from spill_path (in-kernel
// copy_file_range where the filesystem allows, read/write otherwise).
void write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata, const std::vector<StWrite>& tensors,
                       const std::string& spill_path = "");
void write_file(const std::string& path, const std::vector<uint8_t>& bytes);
std::vector<uint8_t> read_file(const std::string& path);

}  // namespace spx
