#include "auth/common/tag_list.hpp"

#include "base/strings.hpp"

namespace hikyaku::auth::common {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

// Skip FWS: WSP, and CRLF only when followed by WSP (RFC 5322 §3.2.2).
size_t skip_fws(std::string_view s, size_t i) {
  while (i < s.size()) {
    if (is_wsp(s[i])) {
      ++i;
    } else if (s[i] == '\r' && i + 2 < s.size() && s[i + 1] == '\n' && is_wsp(s[i + 2])) {
      i += 3;
    } else if (s[i] == '\n' && i + 1 < s.size() && is_wsp(s[i + 1])) {
      i += 2;  // bare-LF folding from DNS text or LF test files
    } else {
      break;
    }
  }
  return i;
}

// RFC 6376 §3.2: tval = 1*VALCHAR; VALCHAR = %x21-3A / %x3C-7E.
bool is_valchar(char c) {
  auto u = static_cast<unsigned char>(c);
  return u >= 0x21 && u <= 0x7e && c != ';';
}

}  // namespace

std::optional<std::string_view> TagList::find(std::string_view name) const {
  for (const auto& t : tags)
    if (t.name == name) return std::string_view(t.value);
  return std::nullopt;
}

std::string strip_whitespace(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value)
    if (!is_wsp(c) && c != '\r' && c != '\n') out += c;
  return out;
}

base::Result<TagList> parse_tag_list(std::string_view s) {
  TagList list;
  size_t i = skip_fws(s, 0);
  if (i == s.size()) return base::make_error("empty tag list");
  while (i < s.size()) {
    // RFC 6376 §3.2: tag-name = ALPHA *ALNUMPUNC (ALNUMPUNC = ALPHA / DIGIT / "_").
    size_t start = i;
    if (!base::ascii_alpha(s[i])) return base::make_error("tag name must start with a letter");
    while (i < s.size() && (base::ascii_alnum(s[i]) || s[i] == '_')) ++i;
    std::string name(s.substr(start, i - start));
    i = skip_fws(s, i);
    if (i >= s.size() || s[i] != '=') return base::make_error("missing '=' after tag " + name);
    i = skip_fws(s, i + 1);
    // tag-value = [ tval *( 1*(WSP / FWS) tval ) ]
    size_t vstart = i;
    size_t vend = i;
    while (i < s.size() && s[i] != ';') {
      if (is_valchar(s[i])) {
        ++i;
        vend = i;
        continue;
      }
      size_t j = skip_fws(s, i);
      if (j == i) return base::make_error("invalid character in value of tag " + name);
      i = j;
    }
    for (const auto& t : list.tags)
      if (t.name == name) return base::make_error("duplicate tag " + name);  // RFC 6376 §3.2
    list.tags.push_back({std::move(name), std::string(s.substr(vstart, vend - vstart))});
    if (i < s.size()) i = skip_fws(s, i + 1);  // past ';' (a trailing ';' is allowed)
  }
  return list;
}

}  // namespace hikyaku::auth::common
