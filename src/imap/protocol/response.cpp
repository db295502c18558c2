#include "imap/protocol/response.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <ctime>

#include "base/strings.hpp"

namespace hikyaku::imap::protocol {

namespace {
struct FlagName {
  uint8_t bit;
  const char* name;
  char letter;
};
// Maildir letters: D draft, F flagged, R replied, S seen, T trashed.
constexpr std::array<FlagName, 5> kFlags{{
    {kSeen, "\\Seen", 'S'},
    {kAnswered, "\\Answered", 'R'},
    {kFlagged, "\\Flagged", 'F'},
    {kDeleted, "\\Deleted", 'T'},
    {kDraft, "\\Draft", 'D'},
}};
}  // namespace

uint8_t flag_bit(std::string_view name) {
  for (const auto& f : kFlags) {
    if (base::iequals(name, f.name)) return f.bit;
  }
  return 0;
}

std::string flag_list(uint8_t flags, bool recent, const std::vector<std::string>& keywords) {
  std::string out = "(";
  for (const auto& f : kFlags) {
    if (flags & f.bit) {
      if (out.size() > 1) out += ' ';
      out += f.name;
    }
  }
  for (const auto& k : keywords) {
    if (out.size() > 1) out += ' ';
    out += k;
  }
  if (recent) {
    if (out.size() > 1) out += ' ';
    out += "\\Recent";
  }
  return out + ")";
}

bool is_keyword(std::string_view flag) { return !flag.empty() && flag[0] != '\\'; }

bool has_keyword(const std::vector<std::string>& keywords, std::string_view name) {
  for (const auto& k : keywords) {
    if (base::iequals(k, name)) return true;
  }
  return false;
}

bool add_keyword(std::vector<std::string>& keywords, std::string_view name) {
  if (!is_keyword(name) || has_keyword(keywords, name)) return false;
  keywords.emplace_back(name);
  std::sort(keywords.begin(), keywords.end(),
            [](const std::string& a, const std::string& b) { return base::to_lower(a) < base::to_lower(b); });
  return true;
}

bool remove_keyword(std::vector<std::string>& keywords, std::string_view name) {
  auto n = keywords.size();
  std::erase_if(keywords, [&](const std::string& k) { return base::iequals(k, name); });
  return keywords.size() != n;
}

std::string maildir_letters(uint8_t flags) {
  std::string out;
  for (char c : std::string_view("DFRST")) {
    for (const auto& f : kFlags) {
      if (f.letter == c && (flags & f.bit)) out += c;
    }
  }
  return out;
}

uint8_t from_maildir_letters(std::string_view letters) {
  uint8_t out = 0;
  for (char c : letters) {
    for (const auto& f : kFlags) {
      if (f.letter == c) out |= f.bit;
    }
  }
  return out;
}

std::string literal(std::string_view s) {
  return "{" + std::to_string(s.size()) + "}\r\n" + std::string(s);
}

std::string binary_literal(std::string_view s) {
  if (s.find('\0') == std::string_view::npos) return literal(s);
  return "~" + literal(s);
}

std::string quote(std::string_view s, bool utf8) {
  // RFC 3501 §9: QUOTED-CHAR is any 7-bit TEXT-CHAR (no NUL, CR, LF); '"' and
  // '\' escaped. Anything else, or a long value, goes as a literal.
  if (s.size() > 1024) return literal(s);
  const bool eight_bit_ok = utf8 && base::valid_utf8(s);
  for (char c : s) {
    auto u = static_cast<unsigned char>(c);
    if (u == 0 || u == '\r' || u == '\n' || (u >= 0x80 && !eight_bit_ok)) return literal(s);
  }
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string nstring(const std::optional<std::string>& s) { return s ? quote(*s) : "NIL"; }

std::string internal_date(int64_t unix_seconds) {
  static constexpr std::array<const char*, 12> kMonths{"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                       "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::time_t t = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  (void)std::snprintf(buf, sizeof buf, "\"%02d-%s-%04d %02d:%02d:%02d +0000\"", tm.tm_mday,
                      kMonths[static_cast<size_t>(tm.tm_mon) % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                      tm.tm_sec);
  return buf;
}

}  // namespace hikyaku::imap::protocol
