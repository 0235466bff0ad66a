#include "json.hpp"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>

#include "error.hpp"

namespace spx {

namespace {
const char* type_name(Json::Type t) {
  switch (t) {
    case Json::Type::Null: return "null";
    case Json::Type::Bool: return "a boolean";
    case Json::Type::Number: return "a number";
    case Json::Type::String: return "a string";
    case Json::Type::Array: return "an array";
    case Json::Type::Object: return "an object";
  }
  return "?";
}
}  // namespace

Json Json::boolean(bool b) {
  Json j;
  j.type_ = Type::Bool;
  j.b_ = b;
  return j;
}

Json Json::number(double x) {
  if (!std::isfinite(x)) fail("json: cannot encode non-finite number ", x);
  Json j;
  j.type_ = Type::Number;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", x);
  j.s_ = buf;
  return j;
}

Json Json::integer(int64_t x) {
  Json j;
  j.type_ = Type::Number;
  j.s_ = std::to_string(x);
  return j;
}

Json Json::uinteger(uint64_t x) {
  Json j;
  j.type_ = Type::Number;
  j.s_ = std::to_string(x);
  return j;
}

Json Json::string(std::string s) {
  Json j;
  j.type_ = Type::String;
  j.s_ = std::move(s);
  return j;
}

Json Json::array() {
  Json j;
  j.type_ = Type::Array;
  return j;
}

Json Json::object() {
  Json j;
  j.type_ = Type::Object;
  return j;
}

static void want(const Json& j, Json::Type t, const std::string& what) {
  if (j.type() != t) fail(what, ": is ", type_name(j.type()), ", want ", type_name(t));
}

bool Json::as_bool(const std::string& what) const {
  want(*this, Type::Bool, what);
  return b_;
}

double Json::as_double(const std::string& what) const {
  want(*this, Type::Number, what);
  return std::strtod(s_.c_str(), nullptr);
}

// integer_text reports whether a number's text is a plain integer (no fraction or exponent).
static bool integer_text(const std::string& s) {
  return s.find_first_of(".eE") == std::string::npos;
}

int64_t Json::as_int(const std::string& what) const {
  want(*this, Type::Number, what);
  if (!integer_text(s_)) {
    // Accept integral values written with a fraction or exponent (e.g. 2e3), as Go would not;
    // but only when exact.
    double d = std::strtod(s_.c_str(), nullptr);
    if (d != std::floor(d) || std::fabs(d) > 9007199254740992.0) fail(what, ": ", s_, " is not an integer");
    return static_cast<int64_t>(d);
  }
  errno = 0;
  long long v = std::strtoll(s_.c_str(), nullptr, 10);
  if (errno == ERANGE) fail(what, ": ", s_, " is outside the int64 range");
  return v;
}

uint64_t Json::as_uint(const std::string& what) const {
  want(*this, Type::Number, what);
  if (!integer_text(s_) || s_[0] == '-') fail(what, ": ", s_, " is not a non-negative integer");
  errno = 0;
  unsigned long long v = std::strtoull(s_.c_str(), nullptr, 10);
  if (errno == ERANGE) fail(what, ": ", s_, " is outside the uint64 range");
  return v;
}

const std::string& Json::as_string(const std::string& what) const {
  want(*this, Type::String, what);
  return s_;
}

const std::vector<Json>& Json::as_array(const std::string& what) const {
  want(*this, Type::Array, what);
  return arr_;
}

const std::vector<std::pair<std::string, Json>>& Json::as_object(const std::string& what) const {
  want(*this, Type::Object, what);
  return obj_;
}

const Json* Json::find(const std::string& key) const {
  if (type_ != Type::Object) return nullptr;
  for (const auto& kv : obj_)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

const Json& Json::at(const std::string& key, const std::string& what) const {
  want(*this, Type::Object, what);
  const Json* v = find(key);
  if (!v) fail(what, ": missing field \"", key, "\"");
  return *v;
}

Json& Json::push(Json v) {
  if (type_ != Type::Array) fail("json: push on ", type_name(type_));
  arr_.push_back(std::move(v));
  return arr_.back();
}

Json& Json::set(const std::string& key, Json v) {
  if (type_ != Type::Object) fail("json: set on ", type_name(type_));
  for (auto& kv : obj_)
    if (kv.first == key) {
      kv.second = std::move(v);
      return kv.second;
    }
  obj_.emplace_back(key, std::move(v));
  return obj_.back().second;
}

void json_quote(std::string& out, const std::string& s) {
  // Escapes as Go's encoding/json does (HTML-safe <, >, &; \b \f \n \r \t; U+2028/9), so
  // documents the executor writes are byte-identical to the Go writer's.
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (size_t i = 0; i < s.size(); i++) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '<':
      case '>':
      case '&':
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
        break;
      default:
        if (c < 0x20) {
          out += "\\u00";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xA8 || static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
          out += static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
          i += 2;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

void Json::dump_to(std::string& out) const {
  switch (type_) {
    case Type::Null: out += "null"; break;
    case Type::Bool: out += b_ ? "true" : "false"; break;
    case Type::Number: out += s_; break;
    case Type::String: json_quote(out, s_); break;
    case Type::Array:
      out += '[';
      for (size_t i = 0; i < arr_.size(); i++) {
        if (i) out += ',';
        arr_[i].dump_to(out);
      }
      out += ']';
      break;
    case Type::Object:
      out += '{';
      for (size_t i = 0; i < obj_.size(); i++) {
        if (i) out += ',';
        json_quote(out, obj_[i].first);
        out += ':';
        obj_[i].second.dump_to(out);
      }
      out += '}';
      break;
  }
}

std::string Json::dump() const {
  std::string out;
  dump_to(out);
  return out;
}

// JsonParser is a recursive-descent parser over a byte string.
class JsonParser {
 public:
  JsonParser(const std::string& t, const std::string& what) : t_(t), what_(what) {}

  Json parse_document() {
    skip_ws();
    Json v = value(0);
    skip_ws();
    if (pos_ != t_.size()) error("trailing data after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 256;
  const std::string& t_;
  const std::string& what_;
  size_t pos_ = 0;

  [[noreturn]] void error(const std::string& msg) { fail(what_, ": invalid JSON at byte ", pos_, ": ", msg); }

  void skip_ws() {
    while (pos_ < t_.size() && (t_[pos_] == ' ' || t_[pos_] == '\t' || t_[pos_] == '\n' || t_[pos_] == '\r')) pos_++;
  }

  bool literal(const char* word) {
    size_t n = std::char_traits<char>::length(word);
    if (t_.compare(pos_, n, word) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }

  Json value(int depth) {
    if (depth > kMaxDepth) error("nested too deeply");
    if (pos_ >= t_.size()) error("unexpected end of input");
    char c = t_[pos_];
    if (c == '{') return object(depth);
    if (c == '[') return array(depth);
    if (c == '"') return Json::string(string_lit());
    if (c == '-' || (c >= '0' && c <= '9')) return number();
    if (literal("true")) return Json::boolean(true);
    if (literal("false")) return Json::boolean(false);
    if (literal("null")) return Json();
    error(std::string("unexpected character '") + c + "'");
  }

  Json object(int depth) {
    Json o = Json::object();
    pos_++;  // {
    skip_ws();
    if (pos_ < t_.size() && t_[pos_] == '}') {
      pos_++;
      return o;
    }
    for (;;) {
      skip_ws();
      if (pos_ >= t_.size() || t_[pos_] != '"') error("expected a string key");
      std::string key = string_lit();
      skip_ws();
      if (pos_ >= t_.size() || t_[pos_] != ':') error("expected ':'");
      pos_++;
      skip_ws();
      Json v = value(depth + 1);
      if (o.find(key)) error("duplicate key \"" + key + "\"");
      o.obj_.emplace_back(std::move(key), std::move(v));
      skip_ws();
      if (pos_ < t_.size() && t_[pos_] == ',') {
        pos_++;
        continue;
      }
      if (pos_ < t_.size() && t_[pos_] == '}') {
        pos_++;
        return o;
      }
      error("expected ',' or '}'");
    }
  }

  Json array(int depth) {
    Json a = Json::array();
    pos_++;  // [
    skip_ws();
    if (pos_ < t_.size() && t_[pos_] == ']') {
      pos_++;
      return a;
    }
    for (;;) {
      skip_ws();
      a.arr_.push_back(value(depth + 1));
      skip_ws();
      if (pos_ < t_.size() && t_[pos_] == ',') {
        pos_++;
        continue;
      }
      if (pos_ < t_.size() && t_[pos_] == ']') {
        pos_++;
        return a;
      }
      error("expected ',' or ']'");
    }
  }

  Json number() {
    size_t start = pos_;
    if (t_[pos_] == '-') pos_++;
    if (pos_ >= t_.size()) error("truncated number");
    if (t_[pos_] == '0') {
      pos_++;
    } else if (t_[pos_] >= '1' && t_[pos_] <= '9') {
      while (pos_ < t_.size() && isdigit(t_[pos_])) pos_++;
    } else {
      error("bad number");
    }
    if (pos_ < t_.size() && t_[pos_] == '.') {
      pos_++;
      if (pos_ >= t_.size() || !isdigit(t_[pos_])) error("bad fraction");
      while (pos_ < t_.size() && isdigit(t_[pos_])) pos_++;
    }
    if (pos_ < t_.size() && (t_[pos_] == 'e' || t_[pos_] == 'E')) {
      pos_++;
      if (pos_ < t_.size() && (t_[pos_] == '+' || t_[pos_] == '-')) pos_++;
      if (pos_ >= t_.size() || !isdigit(t_[pos_])) error("bad exponent");
      while (pos_ < t_.size() && isdigit(t_[pos_])) pos_++;
    }
    Json j;
    j.type_ = Json::Type::Number;
    j.s_ = t_.substr(start, pos_ - start);
    return j;
  }

  static bool isdigit(char c) { return c >= '0' && c <= '9'; }

  unsigned hex4() {
    if (pos_ + 4 > t_.size()) error("truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
      char c = t_[pos_++];
      v <<= 4;
      if (c >= '0' && c <= '9') v |= c - '0';
      else if (c >= 'a' && c <= 'f') v |= c - 'a' + 10;
      else if (c >= 'A' && c <= 'F') v |= c - 'A' + 10;
      else error("bad \\u escape");
    }
    return v;
  }

  static void utf8(std::string& out, unsigned cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  std::string string_lit() {
    pos_++;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= t_.size()) error("unterminated string");
      unsigned char c = static_cast<unsigned char>(t_[pos_++]);
      if (c == '"') return out;
      if (c < 0x20) error("control character in string");
      if (c != '\\') {
        out += static_cast<char>(c);
        continue;
      }
      if (pos_ >= t_.size()) error("unterminated escape");
      char e = t_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          unsigned cp = hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // high surrogate: a low one must follow
            if (pos_ + 2 <= t_.size() && t_[pos_] == '\\' && t_[pos_ + 1] == 'u') {
              pos_ += 2;
              unsigned lo = hex4();
              if (lo < 0xDC00 || lo >= 0xE000) error("unpaired surrogate");
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              error("unpaired surrogate");
            }
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            error("unpaired surrogate");
          }
          utf8(out, cp);
          break;
        }
        default: error(std::string("bad escape \\") + e);
      }
    }
  }
};

Json Json::parse(const std::string& text, const std::string& what) {
  return JsonParser(text, what).parse_document();
}

}  // namespace spx
