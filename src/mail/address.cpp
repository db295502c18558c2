#include "mail/address.hpp"

#include "base/strings.hpp"

namespace hikyaku::mail {
namespace {

// RFC 5322 atext plus UTF-8 octets when SMTPUTF8 is on (RFC 6531 §3.3).
bool is_atext(unsigned char c, bool utf8) {
  if (c >= 0x80) return utf8;
  if (base::ascii_alnum(static_cast<char>(c))) return true;
  switch (c) {
    case '!': case '#': case '$': case '%': case '&': case '\'': case '*': case '+':
    case '-': case '/': case '=': case '?': case '^': case '_': case '`': case '{':
    case '|': case '}': case '~':
      return true;
    default:
      return false;
  }
}

bool valid_dot_string(std::string_view s, bool utf8) {
  if (s.empty() || s.front() == '.' || s.back() == '.') return false;
  char prev = 0;
  for (char c : s) {
    if (c == '.') {
      if (prev == '.') return false;
    } else if (!is_atext(static_cast<unsigned char>(c), utf8)) {
      return false;
    }
    prev = c;
  }
  return true;
}

bool valid_domain(std::string_view d, bool utf8) {
  if (d.empty() || d.size() > 255) return false;
  if (d.front() == '[') {
    // address-literal: accept IPv4 / IPv6: / General-address-literal shapes.
    if (d.back() != ']' || d.size() < 3) return false;
    for (char c : d.substr(1, d.size() - 2))
      if (static_cast<unsigned char>(c) <= ' ' || c == '[' || c == ']' || c == '\\') return false;
    return true;
  }
  for (auto label : base::split(d, '.')) {
    if (label.empty() || label.size() > 63) return false;
    if (label.front() == '-' || label.back() == '-') return false;
    for (char c : label) {
      auto u = static_cast<unsigned char>(c);
      bool ok = base::ascii_alnum(c) || u == '-' || (utf8 && u >= 0x80);
      if (!ok) return false;
    }
  }
  return true;
}

}  // namespace

std::string domain_of(std::string_view address) {
  auto at = address.rfind('@');
  return at == std::string_view::npos ? std::string() : base::to_lower(address.substr(at + 1));
}

std::string Address::key() const { return base::to_lower(local) + "@" + domain; }

bool Address::has_utf8() const {
  for (char c : local + domain)
    if (static_cast<unsigned char>(c) >= 0x80) return true;
  return false;
}

std::optional<Address> parse_mailbox(std::string_view text, bool utf8) {
  if (text.empty() || text.size() > 512) return std::nullopt;
  Address a;
  size_t at;
  if (text.front() == '"') {
    // Quoted-string local part (RFC 5321 §4.1.2): qtextSMTP / quoted-pairSMTP.
    std::string local;
    size_t i = 1;
    bool closed = false;
    for (; i < text.size(); ++i) {
      auto c = static_cast<unsigned char>(text[i]);
      if (c == '\\') {
        if (i + 1 >= text.size()) return std::nullopt;
        auto n = static_cast<unsigned char>(text[i + 1]);
        if (n < 32 || n > 126) return std::nullopt;
        local += text[i + 1];
        ++i;
      } else if (c == '"') {
        closed = true;
        break;
      } else if ((c >= 32 && c <= 126) || (utf8 && c >= 0x80)) {
        local += text[i];
      } else {
        return std::nullopt;
      }
    }
    if (!closed || i + 1 >= text.size() || text[i + 1] != '@') return std::nullopt;
    at = i + 1;
    // Keep the quoted form when the content is not a valid dot-string.
    a.local = valid_dot_string(local, utf8) ? local : std::string(text.substr(0, at));
  } else {
    at = text.rfind('@');
    if (at == std::string_view::npos || at == 0) return std::nullopt;
    if (!valid_dot_string(text.substr(0, at), utf8)) return std::nullopt;
    a.local = std::string(text.substr(0, at));
  }
  if (a.local.size() > 64 + 2) return std::nullopt;  // RFC 5321 §4.5.3.1.1 (+quotes)
  auto domain = text.substr(at + 1);
  if (!valid_domain(domain, utf8)) return std::nullopt;
  a.domain = base::to_lower(domain);
  return a;
}

PathParse parse_path(std::string_view text, bool allow_null, bool utf8) {
  PathParse r;
  if (text.empty() || text.front() != '<') return r;
  // Find the closing '>' outside a quoted string.
  bool quoted = false;
  size_t close = std::string_view::npos;
  for (size_t i = 1; i < text.size(); ++i) {
    char c = text[i];
    if (quoted && c == '\\') {
      ++i;
      continue;
    }
    if (c == '"') quoted = !quoted;
    if (!quoted && c == '>') {
      close = i;
      break;
    }
  }
  if (close == std::string_view::npos) return r;
  auto inner = text.substr(1, close - 1);
  r.rest = text.substr(close + 1);
  if (inner.empty()) {
    r.ok = allow_null;
    return r;
  }
  // Source route "@a,@b:" (RFC 5321 §4.1.2 A-d-l): accepted and ignored (§C).
  if (inner.front() == '@') {
    auto colon = inner.find(':');
    if (colon == std::string_view::npos) return r;
    inner.remove_prefix(colon + 1);
  }
  r.address = parse_mailbox(inner, utf8);
  r.ok = r.address.has_value();
  return r;
}

}  // namespace hikyaku::mail
