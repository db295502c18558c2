#include "scan/protocol/json.hpp"

// GCC 12 reports std::variant's move of a Value into base::Result as "may be
// used uninitialized" at -O2 (a false positive of its variant inlining, as in
// GCC bug 105593); the value is always constructed.
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ < 13
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include <charconv>
#include <cmath>
#include <cstdlib>

#include "base/strings.hpp"

namespace hikyaku::scan::json {
namespace {

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  base::Result<Value> document() {
    Value v;
    if (!value(v, 0)) return error();
    skip_ws();
    if (pos_ != s_.size()) return fail("unexpected data after the value");
    return v;
  }

 private:
  base::Error error() const { return base::make_error("JSON: " + why_ + " at offset " + std::to_string(pos_)); }
  base::Error fail(std::string why) {
    why_ = std::move(why);
    return error();
  }
  bool bad(std::string why) {
    if (why_.empty()) why_ = std::move(why);
    return false;
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }
  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return bad("invalid literal");
    pos_ += word.size();
    return true;
  }

  bool value(Value& out, size_t depth) {
    if (depth > kMaxDepth) return bad("nested too deeply");
    skip_ws();
    if (pos_ >= s_.size()) return bad("unexpected end");
    switch (s_[pos_]) {
      case '{': return object(out, depth);
      case '[': return array(out, depth);
      case '"': {
        std::string str;
        if (!string(str)) return false;
        out.v = std::move(str);
        return true;
      }
      case 't': out.v = true; return literal("true");
      case 'f': out.v = false; return literal("false");
      case 'n': out.v = nullptr; return literal("null");
      default: return number(out);
    }
  }

  // After the opening bracket: true (and past it) when `close` follows at once.
  bool opens_empty(char close) {
    ++pos_;
    skip_ws();
    if (pos_ >= s_.size() || s_[pos_] != close) return false;
    ++pos_;
    return true;
  }
  // After a member or element: ',' (more follow) or `close` (`done`).
  bool separator(char close, bool& done) {
    skip_ws();
    if (pos_ >= s_.size()) return bad("unexpected end");
    if (s_[pos_] != ',' && s_[pos_] != close) return bad(std::string("expected ',' or '") + close + "'");
    done = s_[pos_++] == close;
    return true;
  }

  bool object(Value& out, size_t depth) {
    Object obj;
    for (bool done = opens_empty('}'); !done;) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') return bad("expected a member name");
      std::string name;
      if (!string(name)) return false;
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != ':') return bad("expected ':'");
      ++pos_;
      Value member;
      if (!value(member, depth + 1)) return false;
      obj.insert_or_assign(std::move(name), std::move(member));
      if (!separator('}', done)) return false;
    }
    out.v = std::move(obj);
    return true;
  }

  bool array(Value& out, size_t depth) {
    Array arr;
    for (bool done = opens_empty(']'); !done;) {
      Value el;
      if (!value(el, depth + 1)) return false;
      arr.push_back(std::move(el));
      if (!separator(']', done)) return false;
    }
    out.v = std::move(arr);
    return true;
  }

  // RFC 8259 §6: -? int frac? exp?
  bool number(Value& out) {
    const size_t start = pos_;
    auto digits = [&] {
      const size_t from = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - from;
    };
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    if (pos_ < s_.size() && s_[pos_] == '0') {
      ++pos_;
    } else if (digits() == 0) {
      return bad("invalid value");
    }
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) return bad("invalid number");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) return bad("invalid number");
    }
    // strtod needs a terminated copy; numbers are short.
    const std::string text(s_.substr(start, pos_ - start));
    const double d = std::strtod(text.c_str(), nullptr);
    out.v = std::isfinite(d) ? d : 0.0;
    return true;
  }

  bool hex4(uint32_t& out) {
    if (s_.size() - pos_ < 4) return bad("short \\u escape");
    out = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = s_[pos_++];
      out <<= 4;
      if (c >= '0' && c <= '9') out |= static_cast<uint32_t>(c - '0');
      else if (c >= 'a' && c <= 'f') out |= static_cast<uint32_t>(c - 'a' + 10);
      else if (c >= 'A' && c <= 'F') out |= static_cast<uint32_t>(c - 'A' + 10);
      else return bad("invalid \\u escape");
    }
    return true;
  }

  static void utf8(std::string& out, uint32_t cp) { base::append_utf8(out, cp); }

  // RFC 8259 §7. A lone surrogate becomes U+FFFD rather than an error
  // (scanners echo symbol options that may hold anything).
  bool string(std::string& out) {
    ++pos_;  // '"'
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return bad("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) break;
      const char e = s_[pos_++];
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
          uint32_t cp = 0;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp <= 0xDBFF && s_.substr(pos_, 2) == "\\u") {
            const size_t back = pos_;
            pos_ += 2;
            uint32_t low = 0;
            if (!hex4(low)) return false;
            if (low >= 0xDC00 && low <= 0xDFFF) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
            } else {
              pos_ = back;
              cp = 0xFFFD;
            }
          } else if (cp >= 0xD800 && cp <= 0xDFFF) {
            cp = 0xFFFD;
          }
          utf8(out, cp);
          break;
        }
        default: return bad("invalid escape");
      }
    }
    return bad("unterminated string");
  }

  std::string_view s_;
  size_t pos_ = 0;
  std::string why_;
};

}  // namespace

const Value* Value::get(std::string_view name) const {
  const Object* o = object();
  if (o == nullptr) return nullptr;
  auto it = o->find(name);
  return it == o->end() ? nullptr : &it->second;
}

base::Result<Value> parse(std::string_view text) { return Parser(text).document(); }

}  // namespace hikyaku::scan::json
