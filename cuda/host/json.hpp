// json.hpp: a small JSON value with a strict RFC 8259 parser and a deterministic emitter.
// Written for the executor's needs (programs, safetensors headers, trace metadata); numbers keep
// their source text so 64-bit integers (seeds, offsets) survive exactly.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace spx {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };

  Json() = default;  // null
  static Json boolean(bool b);
  static Json number(double x);
  static Json integer(int64_t x);
  static Json uinteger(uint64_t x);
  static Json string(std::string s);
  static Json array();
  static Json object();

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::Null; }
  bool is_bool() const { return type_ == Type::Bool; }
  bool is_number() const { return type_ == Type::Number; }
  bool is_string() const { return type_ == Type::String; }
  bool is_array() const { return type_ == Type::Array; }
  bool is_object() const { return type_ == Type::Object; }

  // Accessors throw spx::Error naming `what` when the value has another type or range.
  bool as_bool(const std::string& what) const;
  double as_double(const std::string& what) const;
  int64_t as_int(const std::string& what) const;  // must be an integer in int64 range
  uint64_t as_uint(const std::string& what) const;
  const std::string& as_string(const std::string& what) const;
  const std::vector<Json>& as_array(const std::string& what) const;
  const std::vector<std::pair<std::string, Json>>& as_object(const std::string& what) const;

  // Object access: find returns nullptr when the key is absent; at throws.
  const Json* find(const std::string& key) const;
  const Json& at(const std::string& key, const std::string& what) const;

  // Building: push to an array, set (append or replace) a key of an object.
  Json& push(Json v);
  Json& set(const std::string& key, Json v);

  // dump renders compact JSON; object keys in insertion order (callers insert sorted keys
  // where byte-stable output matters).
  std::string dump() const;
  void dump_to(std::string& out) const;

  // parse reads exactly one JSON value (surrounding whitespace allowed); errors name the byte
  // offset. Depth is bounded so hostile input cannot exhaust the stack.
  static Json parse(const std::string& text, const std::string& what);

 private:
  Type type_ = Type::Null;
  bool b_ = false;
  std::string s_;  // string value, or a number's text
  std::vector<Json> arr_;
  std::vector<std::pair<std::string, Json>> obj_;
  friend class JsonParser;
};

// json_quote appends s as a JSON string literal.
void json_quote(std::string& out, const std::string& s);

}  // namespace spx
