#include "mail/header.hpp"

#include <algorithm>
#include <cstdio>
#include <ctime>

#include "base/strings.hpp"

namespace hikyaku::mail {
namespace {

// The characters an address that contains a hidden one may have around it:
// a local part before it (RFC 5322 atext and dots; RFC 6531 UTF-8), a
// longer domain after it (letters, digits, '-', dots; UTF-8).
bool local_part_char(char c) {
  return base::ascii_alnum(c) || static_cast<unsigned char>(c) >= 0x80 ||
         std::string_view("!#$%&'*+-/=?^_`{|}~.").find(c) != std::string_view::npos;
}
bool domain_char(char c) {
  return base::ascii_alnum(c) || static_cast<unsigned char>(c) >= 0x80 || c == '.' || c == '-';
}

}  // namespace

std::string_view next_line(std::string_view text, size_t& pos) {
  size_t nl = text.find('\n', pos);
  if (nl == std::string_view::npos) nl = text.size();
  std::string_view line = text.substr(pos, nl - pos);
  pos = std::min(nl + 1, text.size());
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

size_t first_field_end(std::string_view message) {
  size_t pos = 0;
  next_line(message, pos);
  while (pos < message.size() && (message[pos] == ' ' || message[pos] == '\t')) next_line(message, pos);
  return pos;
}

std::string rfc5322_date(std::chrono::system_clock::time_point t) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::gmtime_r(&tt, &tm);
  char buf[64];
  (void)std::snprintf(buf, sizeof buf, "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday % 7],
                      tm.tm_mday, kMonths[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
  return buf;
}

std::string one_line(std::string_view text, size_t max) {
  std::string out;
  out.reserve(std::min(text.size(), max + 3));
  bool space = false;
  for (unsigned char c : text) {
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      space = !out.empty();
      continue;
    }
    if (space) {
      out += ' ';
      space = false;
    }
    out += (c >= 0x21 && c < 0x7f) ? static_cast<char>(c) : '?';
  }
  if (out.size() > max) {
    out.resize(max);
    out += "...";
  }
  return out;
}

std::string quoted_string(std::string_view text, size_t max) {
  std::string line = one_line(text, max);
  std::string out = "\"";
  for (char c : line) {
    if (c == '\\' || c == '"') out += '\\';
    out += c;
  }
  out += '"';
  return out;
}

std::string redact(std::string text, const std::vector<std::string>& hidden) {
  for (const auto& h : hidden) {
    if (h.empty()) continue;
    for (size_t pos = 0; pos + h.size() <= text.size();) {
      if (!base::iequals(std::string_view(text).substr(pos, h.size()), h)) {
        ++pos;
        continue;
      }
      // The whole address the match is part of ("open@x" for a hidden
      // "pen@x"; "pen@x.org" for "pen@x"): a part of it left in clear
      // would tell which address is hidden. Dots at either edge are
      // punctuation, not the address.
      size_t begin = pos;
      size_t end = pos + h.size();
      while (begin > 0 && local_part_char(text[begin - 1])) --begin;
      while (begin < pos && text[begin] == '.') ++begin;
      while (end < text.size() && domain_char(text[end])) ++end;
      while (end > pos + h.size() && text[end - 1] == '.') --end;
      text.replace(begin, end - begin, "<hidden>");
      pos = begin + 8;
    }
  }
  return text;
}

std::string_view header_section(std::string_view message) {
  if (message.starts_with("\r\n")) return {};
  if (message.starts_with("\n")) return {};
  size_t crlf = message.find("\r\n\r\n");
  size_t lf = message.find("\n\n");
  size_t end = std::min(crlf == std::string_view::npos ? message.size() : crlf + 2,
                        lf == std::string_view::npos ? message.size() : lf + 1);
  return message.substr(0, end);
}

std::vector<std::string> header_values(std::string_view headers, std::string_view name) {
  std::vector<std::string> out;
  std::string* current = nullptr;
  size_t pos = 0;
  while (pos < headers.size()) {
    std::string_view line = next_line(headers, pos);
    if (!line.empty() && (line.front() == ' ' || line.front() == '\t')) {
      // RFC 5322 §2.2.3: a continuation line belongs to the field above.
      if (current) current->append(line);
      continue;
    }
    current = nullptr;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view field = line.substr(0, colon);
    while (!field.empty() && (field.back() == ' ' || field.back() == '\t')) field.remove_suffix(1);
    if (!base::iequals(field, name)) continue;
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
    out.emplace_back(value);
    current = &out.back();
  }
  return out;
}

std::optional<std::string> header_value(std::string_view headers, std::string_view name) {
  auto all = header_values(headers, name);
  if (all.empty()) return std::nullopt;
  return all.front();
}

}  // namespace hikyaku::mail
