#include "delivery/state/destination_state.hpp"

#include <limits>
#include <optional>
#include <set>

#include "base/strings.hpp"

namespace hikyaku::delivery::state {

namespace {

bool valid_spacing(std::chrono::milliseconds spacing) {
  return spacing.count() > 0 && spacing <= kMaxSpacing;
}

bool valid_pause(std::chrono::milliseconds pause) { return pause.count() >= 0 && pause <= kMaxPause; }

bool valid_connections(uint64_t n) { return n >= 1 && n <= kMaxConnections; }

// A number of milliseconds in a file (at most ~292 million years: no overflow).
std::optional<std::chrono::milliseconds> parse_ms(std::string_view s) {
  auto n = base::parse_uint(s);
  if (!n || *n > uint64_t(std::numeric_limits<int64_t>::max())) return std::nullopt;
  return std::chrono::milliseconds(static_cast<int64_t>(*n));
}

// One line of a version 1 file: <domain> <spacing-ms> <until>.
std::optional<DestinationState> parse_v1(const std::vector<std::string_view>& f, std::string& why) {
  if (f.size() != 3) {
    why = "expected 3 fields (domain, spacing in ms, until in Unix seconds), got " + std::to_string(f.size());
    return std::nullopt;
  }
  if (!valid_domain(f[0])) {
    why = "bad domain";
    return std::nullopt;
  }
  auto spacing = parse_ms(f[1]);
  if (!spacing || !valid_spacing(*spacing)) {
    why = "bad spacing (milliseconds, 1 to " + std::to_string(kMaxSpacing.count()) + ")";
    return std::nullopt;
  }
  auto until = base::parse_unix_seconds(f[2]);
  if (!until) {
    why = "bad until (Unix seconds)";
    return std::nullopt;
  }
  // The spacing has no meaning any more: the destination resumes at one
  // connection and ramps up (destination_pace.hpp).
  DestinationState entry;
  entry.domain = std::string(f[0]);
  entry.until = *until;
  return entry;
}

// One line of a version 2 file:
// <domain> <pause-ms> <paused-until> <connections> <until>.
std::optional<DestinationState> parse_v2(const std::vector<std::string_view>& f, std::string& why) {
  if (f.size() != 5) {
    why = "expected 5 fields (domain, pause in ms, paused until in Unix seconds, connections, until in Unix "
          "seconds), got " +
          std::to_string(f.size());
    return std::nullopt;
  }
  if (!valid_domain(f[0])) {
    why = "bad domain";
    return std::nullopt;
  }
  auto pause = parse_ms(f[1]);
  if (!pause || !valid_pause(*pause)) {
    why = "bad pause (milliseconds, 0 to " + std::to_string(kMaxPause.count()) + ")";
    return std::nullopt;
  }
  auto paused_until = base::parse_unix_seconds(f[2]);
  if (!paused_until) {
    why = "bad paused-until (Unix seconds)";
    return std::nullopt;
  }
  auto connections = base::parse_uint(f[3]);
  if (!connections || !valid_connections(*connections)) {
    why = "bad connections (1 to " + std::to_string(kMaxConnections) + ")";
    return std::nullopt;
  }
  auto until = base::parse_unix_seconds(f[4]);
  if (!until) {
    why = "bad until (Unix seconds)";
    return std::nullopt;
  }
  DestinationState entry;
  entry.domain = std::string(f[0]);
  entry.pause = *pause;
  entry.paused_until = *paused_until;
  entry.connections = static_cast<unsigned>(*connections);
  entry.until = *until;
  return entry;
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
  int version = 0;  // 0: header not seen yet
  while (!text.empty()) {
    // One line (the last one may lack its newline).
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    ++number;

    // The header comes first: without it nothing in the file is trusted.
    if (version == 0) {
      if (line == kHeader) {
        version = 2;
      } else if (line == kHeaderV1) {
        version = 1;
      } else {
        out.issues.push_back({number, "not a destination state file (expected \"" + std::string(kHeader) +
                                          "\" or \"" + std::string(kHeaderV1) + "\"); the whole file is ignored"});
        return out;
      }
      continue;
    }
    if (base::blank_or_comment(line)) continue;

    auto f = base::split_fields(line);
    std::string why;
    auto entry = version == 1 ? parse_v1(f, why) : parse_v2(f, why);
    if (!entry) {
      out.issues.push_back({number, why});
      continue;
    }
    if (!seen.emplace(entry->domain).second) {
      out.issues.push_back({number, "duplicate domain " + entry->domain});
      continue;
    }
    out.entries.push_back(std::move(*entry));
  }
  return out;
}

std::string format(const std::vector<DestinationState>& entries) {
  std::string out(kHeader);
  out += "\n# domain pause-ms paused-until-unix-seconds connections until-unix-seconds\n";
  std::set<std::string, std::less<>> seen;
  for (const auto& e : entries) {
    auto paused_until = base::unix_seconds(e.paused_until);
    auto until = base::unix_seconds(e.until);
    if (!valid_domain(e.domain) || !valid_pause(e.pause) || !paused_until || !valid_connections(e.connections) ||
        !until || !seen.emplace(e.domain).second)
      continue;
    out += e.domain;
    out += ' ';
    out += std::to_string(e.pause.count());
    out += ' ';
    out += std::to_string(*paused_until);
    out += ' ';
    out += std::to_string(e.connections);
    out += ' ';
    out += std::to_string(*until);
    out += '\n';
  }
  return out;
}

}  // namespace hikyaku::delivery::state
