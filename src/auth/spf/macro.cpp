#include "auth/spf/macro.hpp"

#include <algorithm>
#include <vector>

#include "base/strings.hpp"

namespace hikyaku::auth::spf {
namespace {

using base::make_error;

bool is_delimiter(char c) {
  return c == '.' || c == '-' || c == '+' || c == ',' || c == '/' || c == '_' || c == '=';
}

// RFC 7208 §7.3: %{i} is dotted decimal for IPv4 and dot-separated nibbles
// for IPv6.
std::string ip_macro(const dns::IpAddress& ip) {
  if (!ip.v6) return ip.to_string();
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (uint8_t b : ip.bytes) {
    if (!out.empty()) out += '.';
    out += kHex[b >> 4];
    out += '.';
    out += kHex[b & 15];
  }
  return out;
}

// RFC 7208 §7.3 + RFC 3986 §2.3: uppercase macros escape everything but the
// unreserved characters.
std::string url_escape(std::string_view s) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    bool unreserved = base::ascii_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out += c;
    } else {
      out += '%';
      out += kHex[u >> 4];
      out += kHex[u & 15];
    }
  }
  return out;
}

// Built with += to dodge GCC 12's -Wrestrict false positive on string + char.
std::string letter_error(std::string_view what, char letter) {
  std::string msg(what);
  msg += letter;
  return msg;
}

base::Result<std::string> macro_value(char letter, const MacroContext& ctx, bool explain) {
  switch (base::ascii_lower(letter)) {
    case 's': return ctx.sender;
    case 'l': return ctx.local_part;
    case 'o': return ctx.sender_domain;
    case 'd': return ctx.domain;
    case 'i': return ip_macro(ctx.ip);
    case 'p': return ctx.validated_name ? ctx.validated_name(ctx.domain) : std::string("unknown");
    case 'v': return std::string(ctx.ip.v6 ? "ip6" : "in-addr");
    case 'h': return ctx.helo;
    default: break;
  }
  // RFC 7208 §7.2: c, r and t are only allowed in "exp" text.
  if (!explain) return make_error(letter_error("outside an explanation: ", letter));
  switch (base::ascii_lower(letter)) {
    case 'c': return ctx.ip.to_string();
    case 'r': return ctx.receiver;
    case 't': return std::to_string(ctx.now_unix);
    default: break;
  }
  return make_error(letter_error("unknown macro letter: ", letter));
}

}  // namespace

base::Result<std::string> expand_macros(std::string_view text, const MacroContext& ctx, bool explain) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c != '%') {
      if (c == ' ' && !explain) return make_error("space in a domain-spec");
      out += c;
      continue;
    }
    if (++i >= text.size()) return make_error("'%' at the end of a macro-string");
    // RFC 7208 §7.1: "%%" → "%", "%_" → " ", "%-" → "%20".
    switch (text[i]) {
      case '%': out += '%'; continue;
      case '_': out += ' '; continue;
      case '-': out += "%20"; continue;
      case '{': break;
      default: return make_error("bad character after '%'");
    }
    if (++i >= text.size()) return make_error("unterminated macro");
    char letter = text[i++];
    auto value = macro_value(letter, ctx, explain);
    if (!value) return value.error();

    // Transformers: *DIGIT ["r"], then *delimiter, then "}".
    size_t digits = 0;
    bool have_digits = false;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
      have_digits = true;
      digits = std::min<size_t>(digits * 10 + static_cast<size_t>(text[i] - '0'), 1000);
      ++i;
    }
    // RFC 7208 §7.3: "If a DIGIT is specified, the value MUST be nonzero."
    if (have_digits && digits == 0) return make_error("zero label count in macro");
    bool reverse = false;
    if (i < text.size() && (text[i] == 'r' || text[i] == 'R')) {
      reverse = true;
      ++i;
    }
    std::string delimiters;
    while (i < text.size() && is_delimiter(text[i])) delimiters += text[i++];
    if (i >= text.size() || text[i] != '}') return make_error("malformed macro");
    if (delimiters.empty()) delimiters.push_back('.');

    std::string expanded = std::move(value.value());
    if (have_digits || reverse || delimiters != ".") {
      // RFC 7208 §7.3: split on the delimiters, optionally reverse, keep the
      // rightmost N parts, join with ".".
      std::vector<std::string> parts;
      std::string cur;
      for (char ch : expanded) {
        if (delimiters.find(ch) != std::string::npos) {
          parts.push_back(std::move(cur));
          cur.clear();
        } else {
          cur += ch;
        }
      }
      parts.push_back(std::move(cur));
      if (reverse) std::reverse(parts.begin(), parts.end());
      size_t keep = have_digits ? std::min(digits, parts.size()) : parts.size();
      expanded.clear();
      for (size_t k = parts.size() - keep; k < parts.size(); ++k) {
        if (!expanded.empty() || k != parts.size() - keep) expanded += '.';
        expanded += parts[k];
      }
    }
    // RFC 7208 §7.3: uppercase macro letters are URL-escaped.
    if (letter >= 'A' && letter <= 'Z') expanded = url_escape(expanded);
    out += expanded;
  }
  return out;
}

base::Result<std::string> expand_domain_spec(std::string_view spec, const MacroContext& ctx) {
  auto r = expand_macros(spec, ctx, false);
  if (!r) return r;
  std::string name = std::move(r.value());
  if (!name.empty() && name.back() == '.') name.pop_back();
  // RFC 7208 §7.3: drop labels from the left until it fits in 253 octets.
  while (name.size() > 253) {
    auto dot = name.find('.');
    if (dot == std::string::npos) break;
    name.erase(0, dot + 1);
  }
  return name;
}

}  // namespace hikyaku::auth::spf
