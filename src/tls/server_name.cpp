#include "tls/server_name.hpp"

#include "base/strings.hpp"

namespace hikyaku::tls {
namespace {

// A name worth comparing: not empty, no empty label, printable ASCII
// without "*" (RFC 6066 §3: the server name is a host name; a peer's "*"
// must not meet a certificate's wildcard as if it were a label).
bool plain_name(std::string_view s) {
  if (s.empty() || s.size() > 253 || s.front() == '.' || s.back() == '.') return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto u = static_cast<unsigned char>(s[i]);
    if (u <= 32 || u >= 127 || s[i] == '*') return false;
    if (s[i] == '.' && s[i + 1] == '.') return false;  // i + 1 < size: the last char is not '.'
  }
  return true;
}

std::string_view strip_dot(std::string_view s) {
  if (!s.empty() && s.back() == '.') s.remove_suffix(1);
  return s;
}

bool is_exact(std::string_view pattern) { return pattern.find('*') == std::string_view::npos; }

}  // namespace

bool name_matches(std::string_view pattern, std::string_view server_name) {
  server_name = strip_dot(server_name);
  pattern = strip_dot(pattern);
  if (!plain_name(server_name)) return false;
  if (is_exact(pattern)) return plain_name(pattern) && base::iequals(pattern, server_name);
  // RFC 6125 §6.4.3: only "*." + a name of at least two labels.
  if (pattern.size() < 3 || pattern[0] != '*' || pattern[1] != '.') return false;
  const std::string_view suffix = pattern.substr(2);
  if (!plain_name(suffix) || suffix.find('.') == std::string_view::npos) return false;
  // The server name: one non-empty label, then exactly the suffix.
  const auto dot = server_name.find('.');
  if (dot == std::string_view::npos || dot == 0) return false;
  return base::iequals(server_name.substr(dot + 1), suffix);
}

std::optional<std::size_t> choose_certificate(const std::vector<std::vector<std::string>>& names,
                                              std::string_view server_name) {
  // Two passes: exact names first, then wildcards.
  for (const bool exact : {true, false}) {
    for (std::size_t i = 0; i < names.size(); ++i)
      for (const auto& pattern : names[i])
        if (is_exact(pattern) == exact && name_matches(pattern, server_name)) return i;
  }
  return std::nullopt;
}

}  // namespace hikyaku::tls
