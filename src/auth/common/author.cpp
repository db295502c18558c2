#include "auth/common/author.hpp"

#include <vector>

#include "base/strings.hpp"

namespace hikyaku::auth::common {
namespace {

// Unfold (RFC 5322 §2.2.3) and drop comments outside quoted strings and
// angle brackets' domain literals; quoted strings are kept with their quotes.
std::string strip_comments(std::string_view raw) {
  // Unfolding comes before any lexing: a quoted-pair must not take the CR
  // of a fold ("\<CRLF> ") and carry it into the display name, which From
  // rewriting writes into a new field (found by fuzz/author_fuzz.cpp).
  std::string v;
  v.reserve(raw.size());
  for (char c : raw)
    if (c != '\r' && c != '\n') v += c;
  std::string out;
  int depth = 0;
  bool quoted = false;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (quoted) {
      out += c;
      if (c == '\\' && i + 1 < v.size()) out += v[++i];
      else if (c == '"') quoted = false;
      continue;
    }
    if (depth > 0) {
      if (c == '\\') ++i;
      else if (c == '(') ++depth;
      else if (c == ')') --depth;
      continue;
    }
    if (c == '(') { ++depth; out += ' '; continue; }
    if (c == '"') quoted = true;
    out += c;
  }
  return out;
}

// Split at commas outside quotes and angle brackets (RFC 5322 §3.4 mailbox-list).
std::vector<std::string> split_list(std::string_view v) {
  std::vector<std::string> parts(1);
  bool quoted = false, angle = false;
  for (size_t i = 0; i < v.size(); ++i) {
    char c = v[i];
    if (quoted) {
      parts.back() += c;
      if (c == '\\' && i + 1 < v.size()) parts.back() += v[++i];
      else if (c == '"') quoted = false;
      continue;
    }
    if (c == '"') quoted = true;
    else if (c == '<') angle = true;
    else if (c == '>') angle = false;
    else if (c == ',' && !angle) {
      parts.emplace_back();
      continue;
    }
    parts.back() += c;
  }
  return parts;
}

std::string unquote(std::string_view s) {
  s = base::trim(s);
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') {
    std::string out;
    for (size_t i = 1; i + 1 < s.size(); ++i) {
      if (s[i] == '\\' && i + 2 < s.size()) ++i;
      out += s[i];
    }
    return out;
  }
  std::string out;
  for (char c : s) {
    if ((c == ' ' || c == '\t') && (out.empty() || out.back() == ' ')) continue;
    out += (c == '\t') ? ' ' : c;
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace

std::optional<Author> parse_author(std::string_view from_value) {
  std::string v = strip_comments(from_value);
  // RFC 5322 §3.4: a group ("name: list;") is not a single author. A
  // quoted-pair (§3.2.4) does not end the quoted string: with
  // "\"Bob\": Sales" <bob@x>" read as a group, DMARC saw no author at all
  // (fuzz/forward_transform_fuzz.cpp found it: our rewritten From quotes
  // such a name and did not parse back).
  bool quoted = false;
  for (size_t i = 0; i < v.size(); ++i) {
    const char c = v[i];
    if (quoted && c == '\\') {
      ++i;
      continue;
    }
    if (c == '"') quoted = !quoted;
    if (!quoted && (c == ':' || c == ';')) return std::nullopt;
  }
  auto parts = split_list(v);
  if (parts.size() != 1) return std::nullopt;
  std::string_view one = base::trim(parts.front());
  Author a;
  std::string_view addr = one;
  if (auto lt = one.rfind('<'); lt != std::string_view::npos) {
    auto gt = one.find('>', lt);
    if (gt == std::string_view::npos) return std::nullopt;
    a.display_name = unquote(one.substr(0, lt));
    addr = one.substr(lt + 1, gt - lt - 1);
  }
  addr = base::trim(addr);
  auto at = addr.rfind('@');
  if (at == std::string_view::npos || at == 0 || at + 1 >= addr.size()) return std::nullopt;
  std::string_view domain = addr.substr(at + 1);
  for (char c : domain)
    if (c == ' ' || c == '\t' || c == '<' || c == '>' || c == '"' || c == '[') return std::nullopt;
  a.address = std::string(addr);
  a.domain = base::to_lower(domain);
  // The root's dot ("example.com.") is not part of the author domain, and
  // neither is a second one: fuzz/author_fuzz.cpp found "x@.." giving the
  // domain "." (and so "x@example.com.." gave "example.com.").
  while (!a.domain.empty() && a.domain.back() == '.') a.domain.pop_back();
  if (a.domain.empty()) return std::nullopt;
  return a;
}

std::optional<Author> find_author(const ParsedMessage& message) {
  auto froms = message.all("From");
  // RFC 7489 §6.6.1: zero or several From fields cannot be evaluated.
  if (froms.size() != 1) return std::nullopt;
  return parse_author(froms.front()->value);
}

}  // namespace hikyaku::auth::common
