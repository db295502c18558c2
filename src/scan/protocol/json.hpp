// Purpose:   A small JSON reader (RFC 8259) for scanner replies (rspamd's
//            /checkv2): text in, a tree of values out. Only reading; no
//            writer, no streaming.
// Standards: RFC 8259 §2-§8 (values, objects, arrays, numbers, strings with
//            \uXXXX escapes and surrogate pairs → UTF-8).
// Trust:     parses untrusted bytes from the network (a scanner may be
//            compromised or be something else on that port): nesting is
//            bounded (kMaxDepth), input size by the caller, and invalid
//            input is an error value; nothing throws, nothing recurses
//            beyond kMaxDepth.
// Concurrency: pure functions.
// Errors:    parse() returns base::Error with the offset of the mistake.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "base/result.hpp"

namespace hikyaku::scan::json {

struct Value;
using Array = std::vector<Value>;
// Duplicate names: the last one wins (RFC 8259 §4 leaves it open).
using Object = std::map<std::string, Value, std::less<>>;

struct Value {
  std::variant<std::nullptr_t, bool, double, std::string, Array, Object> v = nullptr;

  bool is_null() const { return v.index() == 0; }
  const bool* boolean() const { return std::get_if<bool>(&v); }
  const double* number() const { return std::get_if<double>(&v); }
  const std::string* string() const { return std::get_if<std::string>(&v); }
  const Array* array() const { return std::get_if<Array>(&v); }
  const Object* object() const { return std::get_if<Object>(&v); }
  // The member `name` of an object; null for anything else or a missing name.
  const Value* get(std::string_view name) const;
};

constexpr size_t kMaxDepth = 64;

// One JSON text (whitespace around it allowed, nothing else after it).
base::Result<Value> parse(std::string_view text);

}  // namespace hikyaku::scan::json
