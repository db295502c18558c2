#include "auth/common/authentication_results.hpp"

#include <algorithm>

#include "base/strings.hpp"

namespace hikyaku::auth::common {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Replace RFC 5322 comments (nested parentheses, quoted-pairs) by a space.
std::string strip_comments(std::string_view s) {
  std::string out;
  int depth = 0;
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (depth == 0 && c == '"') quoted = !quoted;
    if (c == '\\' && i + 1 < s.size() && (quoted || depth > 0)) {
      if (depth == 0) {
        out += c;
        out += s[i + 1];
      }
      ++i;
      continue;
    }
    if (!quoted && c == '(') {
      ++depth;
      continue;
    }
    if (!quoted && c == ')' && depth > 0) {
      if (--depth == 0) out += ' ';
      continue;
    }
    if (depth == 0) out += c;
  }
  return out;
}

// Split on ';' outside quoted strings. Inside one, a quoted-pair (\" or
// \;) is one character of the string (RFC 5322 §3.2.4): a sender's quoted
// local part must not end the string early and smuggle a result in.
std::vector<std::string> split_semicolons(std::string_view s) {
  std::vector<std::string> parts;
  std::string cur;
  bool quoted = false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (quoted && c == '\\' && i + 1 < s.size()) {
      cur += c;
      cur += s[++i];
      continue;
    }
    if (c == '"') quoted = !quoted;
    if (c == ';' && !quoted) {
      parts.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  parts.push_back(cur);
  return parts;
}

std::string_view trim_all(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && is_space(s[i])) ++i;
    size_t start = i;
    bool quoted = false;
    while (i < s.size() && (quoted || !is_space(s[i]))) {
      if (quoted && s[i] == '\\' && i + 1 < s.size()) {
        i += 2;  // a quoted-pair, as in split_semicolons
        continue;
      }
      if (s[i] == '"') quoted = !quoted;
      ++i;
    }
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// The text of a quoted string, its quoted-pairs undone (quote_if_needed's
// inverse); anything else as it is.
std::string unquote(std::string_view v) {
  if (v.size() < 2 || v.front() != '"' || v.back() != '"') return std::string(v);
  std::string out;
  for (size_t i = 1; i + 1 < v.size(); ++i) {
    if (v[i] == '\\' && i + 2 < v.size()) ++i;
    out += v[i];
  }
  return out;
}

}  // namespace

bool needs_quoting(std::string_view v) {
  return v.empty() || std::any_of(v.begin(), v.end(), [](char c) {
           return is_space(c) || c == ';' || c == '(' || c == ')' || c == '"' || c == '\\' || c == ',';
         });
}

namespace {

// Quote a property value when it is not a plain RFC 2045 token / dot-atom.
std::string quote_if_needed(std::string_view v) {
  if (!needs_quoting(v)) return std::string(v);
  std::string out = "\"";
  for (char c : v) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

AuthenticationResults& AuthenticationResults::add(std::string method, std::string result,
                                                  std::vector<std::pair<std::string, std::string>> properties,
                                                  std::string reason) {
  results.push_back({std::move(method), std::move(result), std::move(reason), std::move(properties)});
  return *this;
}

std::string AuthenticationResults::value() const {
  std::string out = authserv_id + ";";
  if (results.empty()) return out + " none";  // RFC 8601 §2.2 no-result
  for (size_t i = 0; i < results.size(); ++i) {
    const auto& r = results[i];
    out += i == 0 ? " " : ";\r\n\t";
    out += r.method + "=" + r.result;
    if (!r.reason.empty()) out += " reason=" + quote_if_needed(r.reason);
    for (const auto& [k, v] : r.properties) out += " " + k + "=" + quote_if_needed(v);
  }
  return out;
}

std::string AuthenticationResults::field() const { return "Authentication-Results: " + value() + "\r\n"; }

std::optional<AuthenticationResults> parse_authentication_results(std::string_view value) {
  std::string clean = strip_comments(value);
  auto parts = split_semicolons(clean);
  AuthenticationResults ar;
  // RFC 8601 §2.2: authserv-id [ CFWS authres-version ]
  auto head = words(parts[0]);
  if (head.empty() || head.size() > 2) return std::nullopt;
  ar.authserv_id = unquote(head[0]);
  for (size_t p = 1; p < parts.size(); ++p) {
    std::string_view part = trim_all(parts[p]);
    if (part.empty()) continue;
    if (base::iequals(part, "none")) continue;
    auto w = words(part);
    AuthResult r;
    size_t eq = w[0].find('=');
    if (eq == std::string_view::npos) {
      // "method = result" with spaces is legal CFWS; join the first three words.
      if (w.size() >= 3 && w[1] == "=") {
        r.method = base::to_lower(w[0]);
        r.result = base::to_lower(w[2]);
        w.erase(w.begin(), w.begin() + 2);
      } else {
        return std::nullopt;
      }
    } else {
      std::string_view method = w[0].substr(0, eq);
      if (size_t slash = method.find('/'); slash != std::string_view::npos) method = method.substr(0, slash);
      r.method = base::to_lower(trim_all(method));
      r.result = base::to_lower(w[0].substr(eq + 1));
    }
    if (r.method.empty() || r.result.empty()) return std::nullopt;
    for (size_t k = 1; k < w.size(); ++k) {
      size_t e = w[k].find('=');
      if (e == std::string_view::npos) continue;  // tolerate stray words
      std::string key = base::to_lower(w[k].substr(0, e));
      std::string val = unquote(w[k].substr(e + 1));
      if (key == "reason")
        r.reason = val;
      else
        r.properties.emplace_back(std::move(key), std::move(val));
    }
    ar.results.push_back(std::move(r));
  }
  return ar;
}

bool is_own_authentication_results(std::string_view value, std::string_view authserv_id) {
  std::string clean = strip_comments(value);
  auto parts = split_semicolons(clean);
  auto head = words(parts[0]);
  return !head.empty() && base::iequals(unquote(head[0]), authserv_id);
}

std::optional<std::string> collect_results_for(const ParsedMessage& message, std::string_view authserv_id) {
  std::vector<std::string> results;
  bool found = false;
  for (const HeaderField* f : message.all("Authentication-Results")) {
    if (!is_own_authentication_results(f->value, authserv_id)) continue;
    found = true;
    // Everything after the first ';' that follows the authserv-id.
    size_t semi = f->value.find(';');
    if (semi == std::string_view::npos) continue;
    for (const auto& piece : split_semicolons(f->value.substr(semi + 1))) {
      std::string_view t = trim_all(piece);
      if (!t.empty()) results.emplace_back(t);
    }
  }
  if (!found) return std::nullopt;
  std::string out(authserv_id);
  out += "; ";
  for (size_t i = 0; i < results.size(); ++i) {
    if (i > 0) out += ";\r\n  ";
    out += results[i];
  }
  if (results.empty()) out += "none";
  return out;
}

}  // namespace hikyaku::auth::common
