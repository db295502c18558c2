#include "auth/common/message.hpp"

#include "base/strings.hpp"

namespace hikyaku::auth::common {

std::vector<const HeaderField*> ParsedMessage::all(std::string_view name) const {
  std::vector<const HeaderField*> out;
  for (const auto& h : headers)
    if (base::iequals(field_name(h), name)) out.push_back(&h);
  return out;
}

std::string_view field_name(const HeaderField& field) {
  std::string_view n = field.name;
  while (!n.empty() && (n.back() == ' ' || n.back() == '\t')) n.remove_suffix(1);
  return n;
}

ParsedMessage parse_message(std::string_view m) {
  ParsedMessage out;
  size_t i = 0;
  while (i < m.size()) {
    // RFC 5322 §2.1: the first empty line ends the header section.
    if (m.compare(i, 2, "\r\n") == 0) {
      out.has_body_separator = true;
      out.body = m.substr(i + 2);
      return out;
    }
    // One field: this line plus continuation lines starting with WSP.
    size_t start = i;
    size_t end = m.find("\r\n", i);
    while (end != std::string_view::npos && end + 2 < m.size() && (m[end + 2] == ' ' || m[end + 2] == '\t'))
      end = m.find("\r\n", end + 2);
    if (end == std::string_view::npos) end = m.size();
    HeaderField f;
    f.raw = m.substr(start, end - start);
    size_t colon = f.raw.find(':');
    if (colon == std::string_view::npos) {
      f.name = f.raw;
    } else {
      f.name = f.raw.substr(0, colon);
      f.value = f.raw.substr(colon + 1);
    }
    f.index = out.headers.size();
    out.headers.push_back(f);
    i = end == m.size() ? end : end + 2;
  }
  return out;  // no body
}

std::string to_crlf(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 32);
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n' && (i == 0 || text[i - 1] != '\r')) out += '\r';
    out += text[i];
  }
  return out;
}

}  // namespace hikyaku::auth::common
