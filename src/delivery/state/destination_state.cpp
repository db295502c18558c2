#include "delivery/state/destination_state.hpp"

#include <charconv>
#include <set>

namespace hikyaku::delivery::state {

namespace {

// 2100-01-01T00:00:00Z: a later `until` is damage (and would overflow
// system_clock's nanoseconds long before the format's digits run out).
constexpr uint64_t kMaxUntilSeconds = 4102444800;

// A decimal number without sign, spaces or leading '+'; false on overflow.
bool parse_uint(std::string_view s, uint64_t& out) {
  if (s.empty() || s.size() > 19) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// Split on runs of spaces and tabs.
std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool blank_or_comment(std::string_view line) {
  size_t first = line.find_first_not_of(" \t");
  return first == std::string_view::npos || line[first] == '#';
}

bool valid_spacing(std::chrono::milliseconds spacing) {
  return spacing.count() > 0 && spacing <= kMaxSpacing;
}

}  // namespace

bool valid_domain(std::string_view domain) {
  if (domain.empty() || domain.size() > kMaxDomainLength || domain.front() == '#') return false;
  for (unsigned char c : domain)
    if (c <= 0x20 || c == 0x7f) return false;  // one token per field
  return true;
}

ParsedStates parse(std::string_view text) {
  ParsedStates out;
  std::set<std::string, std::less<>> seen;
  size_t number = 0;
  bool header_seen = false;
  while (!text.empty()) {
    // One line (the last one may lack its newline).
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++number;

    // The header comes first: without it nothing in the file is trusted.
    if (!header_seen) {
      if (line != kHeader) {
        out.issues.push_back({number, "not a destination state file (expected \"" + std::string(kHeader) +
                                          "\"); the whole file is ignored"});
        return out;
      }
      header_seen = true;
      continue;
    }
    if (blank_or_comment(line)) continue;

    // <domain> <spacing-ms> <until-unix-seconds>
    auto f = fields(line);
    if (f.size() != 3) {
      out.issues.push_back({number, "expected 3 fields (domain, spacing in ms, until in Unix seconds), got " +
                                        std::to_string(f.size())});
      continue;
    }
    if (!valid_domain(f[0])) {
      out.issues.push_back({number, "bad domain"});
      continue;
    }
    uint64_t spacing = 0;
    if (!parse_uint(f[1], spacing) || !valid_spacing(std::chrono::milliseconds(spacing))) {
      out.issues.push_back({number, "bad spacing (milliseconds, 1 to " + std::to_string(kMaxSpacing.count()) + ")"});
      continue;
    }
    uint64_t until = 0;
    if (!parse_uint(f[2], until) || until > kMaxUntilSeconds) {
      out.issues.push_back({number, "bad until (Unix seconds)"});
      continue;
    }
    if (!seen.emplace(f[0]).second) {
      out.issues.push_back({number, "duplicate domain " + std::string(f[0])});
      continue;
    }
    DestinationState entry;
    entry.domain = std::string(f[0]);
    entry.spacing = std::chrono::milliseconds(spacing);
    entry.until = std::chrono::system_clock::time_point(std::chrono::seconds(until));
    out.entries.push_back(std::move(entry));
  }
  return out;
}

std::string format(const std::vector<DestinationState>& entries) {
  std::string out(kHeader);
  out += "\n# domain spacing-ms until-unix-seconds\n";
  std::set<std::string, std::less<>> seen;
  for (const auto& e : entries) {
    auto until = std::chrono::duration_cast<std::chrono::seconds>(e.until.time_since_epoch()).count();
    if (!valid_domain(e.domain) || !valid_spacing(e.spacing) || until < 0 ||
        static_cast<uint64_t>(until) > kMaxUntilSeconds || !seen.emplace(e.domain).second)
      continue;
    out += e.domain;
    out += ' ';
    out += std::to_string(e.spacing.count());
    out += ' ';
    out += std::to_string(until);
    out += '\n';
  }
  return out;
}

}  // namespace hikyaku::delivery::state
