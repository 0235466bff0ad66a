#include "safetensors.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include <fcntl.h>
#include <unistd.h>

#include "error.hpp"
#include "json.hpp"

namespace spx {

// kMaxHeader bounds the JSON header, as trace/reader.go and safetensors' own reader do (100 MB).
constexpr uint64_t kMaxHeader = 100ull << 20;
// kMaxDims and kMaxNumel bound a shape so products cannot overflow.
constexpr size_t kMaxDims = 64;
constexpr int64_t kMaxNumel = int64_t(1) << 50;

int64_t StTensor::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::vector<uint8_t> read_file(const std::string& path) {
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail(path, ": ", std::strerror(errno));
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.insert(out.end(), buf, buf + n);
  bool err = std::ferror(f);
  std::fclose(f);
  if (err) fail(path, ": read error");
  return out;
}

void write_file(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::string tmp = path + ".tmp";
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail(tmp, ": ", std::strerror(errno));
  size_t n = bytes.empty() ? 0 : std::fwrite(bytes.data(), 1, bytes.size(), f);
  bool ok = n == bytes.size() && std::fflush(f) == 0;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) fail(tmp, ": write error");
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(path, ": ", std::strerror(errno));
}

StFile StFile::read(const std::string& path) { return parse(read_file(path), path); }

StFile StFile::parse(std::vector<uint8_t> raw, const std::string& name) {
  StFile f;
  f.path = name;
  auto err = [&](const std::string& key, const std::string& field, const std::string& msg) -> Error {
    std::string where = name;
    if (!key.empty()) where += ": tensor \"" + key + "\"";
    return Error(where + ": " + field + ": " + msg);
  };
  if (raw.size() < 8) throw err("", "header length", cat("file has ", raw.size(), " bytes, fewer than the 8-byte length prefix"));
  uint64_t n;
  std::memcpy(&n, raw.data(), 8);
  if (n > kMaxHeader || n > raw.size() - 8)
    throw err("", "header length", cat("claims ", n, " bytes but the file has ", raw.size() - 8, " after the prefix"));
  std::string hdr(reinterpret_cast<const char*>(raw.data()) + 8, n);
  Json h;
  try {
    h = Json::parse(hdr, "header");
  } catch (const Error& e) {
    throw err("", "header", e.what());
  }
  if (!h.is_object()) throw err("", "header", "not a JSON object");
  uint64_t data_len = raw.size() - 8 - n;
  for (const auto& kv : h.as_object("header")) {
    const std::string& key = kv.first;
    const Json& v = kv.second;
    if (key == "__metadata__") {
      if (!v.is_object()) throw err("", "__metadata__", "not an object of strings");
      for (const auto& m : v.as_object("__metadata__")) {
        if (!m.second.is_string()) throw err("", "__metadata__." + m.first, "not a string");
        f.metadata[m.first] = m.second.as_string("");
      }
      continue;
    }
    if (!v.is_object()) throw err(key, "entry", "not an object");
    StTensor t;
    t.key = key;
    const Json* dt = v.find("dtype");
    if (!dt || !dt->is_string()) throw err(key, "dtype", "missing or not a string");
    const std::string& ds = dt->as_string("dtype");
    try {
      t.dtype = parse_dtype(ds);
    } catch (const Error& e) {
      throw err(key, "dtype", e.what());
    }
    if (ds != dtype_name(t.dtype)) throw err(key, "dtype", "unknown dtype \"" + ds + "\"");  // aliases are not safetensors names
    const Json* shape = v.find("shape");
    if (!shape || !shape->is_array()) throw err(key, "shape", "missing or not an array");
    if (shape->as_array("shape").size() > kMaxDims) throw err(key, "shape", "has too many dims");
    int64_t numel = 1;
    for (const Json& d : shape->as_array("shape")) {
      int64_t x;
      try {
        x = d.as_int("shape");
      } catch (const Error& e) {
        throw err(key, "shape", e.what());
      }
      if (x < 0 || x > kMaxNumel) throw err(key, "shape", cat("dim ", x, " out of range"));
      t.shape.push_back(x);
      numel = x == 0 ? 0 : (numel > kMaxNumel / x ? kMaxNumel + 1 : numel * x);
      if (numel > kMaxNumel) throw err(key, "shape", "too many elements");
    }
    const Json* offs = v.find("data_offsets");
    if (!offs || !offs->is_array() || offs->as_array("data_offsets").size() != 2)
      throw err(key, "data_offsets", "want [begin, end]");
    try {
      t.begin = offs->as_array("")[0].as_uint("data_offsets");
      t.end = offs->as_array("")[1].as_uint("data_offsets");
    } catch (const Error& e) {
      throw err(key, "data_offsets", e.what());
    }
    if (t.begin > t.end || t.end > data_len)
      throw err(key, "data_offsets", cat("[", t.begin, ", ", t.end, "] outside the data section of ", data_len, " bytes"));
    if (t.end - t.begin != static_cast<uint64_t>(numel) * dtype_size(t.dtype))
      throw err(key, "shape", cat("shape holds ", numel, " elements of ", dtype_size(t.dtype), " bytes but data_offsets span ", t.end - t.begin));
    f.tensors.push_back(std::move(t));
  }
  std::vector<const StTensor*> by_off;
  for (const auto& t : f.tensors) by_off.push_back(&t);
  std::sort(by_off.begin(), by_off.end(), [](const StTensor* a, const StTensor* b) { return a->begin < b->begin || (a->begin == b->begin && a->end < b->end); });
  for (size_t i = 1; i < by_off.size(); i++)
    if (by_off[i]->begin < by_off[i - 1]->end && by_off[i]->begin != by_off[i]->end)
      throw err(by_off[i]->key, "data_offsets", "overlaps tensor \"" + by_off[i - 1]->key + "\"");
  std::sort(f.tensors.begin(), f.tensors.end(), [](const StTensor& a, const StTensor& b) { return a.key < b.key; });
  f.data_off_ = 8 + n;
  f.raw_ = std::move(raw);
  return f;
}

const StTensor* StFile::find(const std::string& key) const {
  auto it = std::lower_bound(tensors.begin(), tensors.end(), key, [](const StTensor& t, const std::string& k) { return t.key < k; });
  return it != tensors.end() && it->key == key ? &*it : nullptr;
}

const StTensor& StFile::at(const std::string& key) const {
  const StTensor* t = find(key);
  if (!t) fail(path, ": no tensor \"", key, "\"");
  return *t;
}

namespace {
// safetensors_header is the 8-byte length and the padded JSON header of tensors laid out in
// key order (tensors sorted here), header keys sorted (as trace.Writer does, so equal inputs
// give byte-identical files).
std::string safetensors_header(const std::map<std::string, std::string>& metadata, std::vector<const StWrite*>& tensors) {
  std::sort(tensors.begin(), tensors.end(), [](const StWrite* a, const StWrite* b) { return a->key < b->key; });
  for (size_t i = 1; i < tensors.size(); i++)
    if (tensors[i]->key == tensors[i - 1]->key) fail("safetensors writer: tensor key \"", tensors[i]->key, "\" added twice");
  // Header keys in byte order, "__metadata__" among them, as Go's encoding/json sorts a map.
  std::vector<std::pair<std::string, Json>> entries;
  Json meta = Json::object();
  for (const auto& kv : metadata) meta.set(kv.first, Json::string(kv.second));
  entries.emplace_back("__metadata__", std::move(meta));
  uint64_t off = 0;
  for (const StWrite* t : tensors) {
    int64_t numel = 1;
    for (int64_t d : t->shape) numel *= d;
    if (static_cast<uint64_t>(numel) * dtype_size(t->dtype) != t->size())
      fail("safetensors writer: tensor \"", t->key, "\": ", t->size(), " bytes for ", numel, " elements of ", dtype_name(t->dtype));
    Json e = Json::object();
    e.set("dtype", Json::string(dtype_name(t->dtype)));
    Json shape = Json::array();
    for (int64_t d : t->shape) shape.push(Json::integer(d));
    e.set("shape", std::move(shape));
    Json offs = Json::array();
    offs.push(Json::uinteger(off));
    offs.push(Json::uinteger(off + t->size()));
    e.set("data_offsets", std::move(offs));
    off += t->size();
    entries.emplace_back(t->key, std::move(e));
  }
  std::sort(entries.begin(), entries.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  Json header = Json::object();
  for (auto& kv : entries) header.set(kv.first, std::move(kv.second));
  std::string h = header.dump();
  while (h.size() % 8) h += ' ';
  uint64_t n = h.size();
  std::string out(8, '\0');
  std::memcpy(&out[0], &n, 8);
  return out + h;
}
}  // namespace

std::vector<uint8_t> render_safetensors(const std::map<std::string, std::string>& metadata, const std::vector<StWrite>& tensors) {
  std::vector<const StWrite*> ts;
  for (const auto& t : tensors) ts.push_back(&t);
  std::string h = safetensors_header(metadata, ts);
  size_t total = h.size();
  for (const StWrite* t : ts) {
    if (t->spilled) fail("safetensors writer: tensor \"", t->key, "\" is spilled: write it with write_safetensors");
    total += t->bytes.size();
  }
  std::vector<uint8_t> out;
  out.reserve(total);
  out.insert(out.end(), h.begin(), h.end());
  for (const StWrite* t : ts) out.insert(out.end(), t->bytes.begin(), t->bytes.end());
  return out;
}

namespace {
void write_all(int fd, const void* p, size_t n, const std::string& what) {
  const uint8_t* b = static_cast<const uint8_t*>(p);
  while (n) {
    ssize_t w = ::write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) fail(what, ": write error: ", std::strerror(errno));
    b += w;
    n -= static_cast<size_t>(w);
  }
}

// copy_range appends n bytes at offset off of in_fd to out_fd.
void copy_range(int in_fd, uint64_t off, uint64_t n, int out_fd, const std::string& what) {
  loff_t in_off = static_cast<loff_t>(off);
  while (n) {
    ssize_t c = copy_file_range(in_fd, &in_off, out_fd, nullptr, n, 0);
    if (c < 0 && errno == EINTR) continue;
    if (c <= 0) break;  // not supported here (or a short file): fall back below
    n -= static_cast<uint64_t>(c);
  }
  std::vector<uint8_t> buf;
  while (n) {
    buf.resize(static_cast<size_t>(std::min<uint64_t>(n, 8 << 20)));
    ssize_t r = ::pread(in_fd, buf.data(), buf.size(), in_off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) fail(what, ": spill file ends early");
    write_all(out_fd, buf.data(), static_cast<size_t>(r), what);
    in_off += r;
    n -= static_cast<uint64_t>(r);
  }
}
}  // namespace

void write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata, const std::vector<StWrite>& tensors,
                       const std::string& spill_path) {
  std::vector<const StWrite*> ts;
  for (const auto& t : tensors) ts.push_back(&t);
  std::string h = safetensors_header(metadata, ts);
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) fail(tmp, ": ", std::strerror(errno));
  int in = -1;
  try {
    write_all(fd, h.data(), h.size(), tmp);
    for (const StWrite* t : ts) {
      if (!t->spilled) {
        write_all(fd, t->bytes.data(), t->bytes.size(), tmp);
        continue;
      }
      if (in < 0 && (in = ::open(spill_path.c_str(), O_RDONLY)) < 0) fail(spill_path, ": ", std::strerror(errno));
      copy_range(in, t->spill_off, t->nbytes, fd, tmp);
    }
  } catch (...) {
    ::close(fd);
    if (in >= 0) ::close(in);
    throw;
  }
  if (in >= 0) ::close(in);
  if (::close(fd) != 0) fail(tmp, ": write error: ", std::strerror(errno));
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(path, ": ", std::strerror(errno));
}

}  // namespace spx
