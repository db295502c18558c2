// Purpose:   The durable rate-limit state of the forward agent, as text: one
//            line per rate-limited destination domain (its pause, until when
//            no connection may start, how many connections its ramp allows,
//            and until when the state is kept: destination_pace.hpp), so a
//            restart does not forget that a far side asked us to stop.
//            Version 2; a version 1 file (spacing between message starts,
//            before issue 17) still loads: each line becomes a ramp at one
//            connection with no pause pending. Parsing and formatting only;
//            smtp_agent.cpp reads and writes the file
//            (DATA_DIR/state/destinations, docs/smtp-client.md).
// Standards: none (our format). Rate-limit deferrals: smtp/client/outcome.hpp.
// Trust:     the file is ours, under data_dir, but may be damaged or edited
//            by hand: every line is validated, a bad line is reported with
//            its number and ignored, never trusted partially.
// Concurrency: plain functions on values; thread-safe.
// Errors:    parse() never fails as a whole: it returns the good entries and
//            one Issue per bad line (a bad header: every line is ignored).
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::delivery::state {

// The first line of the file; a later, incompatible format changes the number.
// format() writes version 2; parse() reads 2 and 1.
inline constexpr std::string_view kHeader = "hikyaku-destinations 2";
inline constexpr std::string_view kHeaderV1 = "hikyaku-destinations 1";

// One rate-limited destination.
struct DestinationState {
  std::string domain;                    // lowercase, as mail::domain_of
  std::chrono::milliseconds pause{0};    // the last pause; 0: not known (a version 1 line)
  std::chrono::system_clock::time_point paused_until{};  // no connection before this (whole seconds; epoch: none)
  unsigned connections = 1;              // allowed at once once the pause is over (the ramp), >= 1
  std::chrono::system_clock::time_point until{};  // forgotten after this (whole seconds)

  bool operator==(const DestinationState&) const = default;
};

// A line that was ignored: 1-based line number and what is wrong with it.
struct Issue {
  size_t line = 0;
  std::string message;
};

struct ParsedStates {
  std::vector<DestinationState> entries;  // in file order, domains unique
  std::vector<Issue> issues;
};

// Limits of a valid line (larger values are damage, not configuration).
inline constexpr std::chrono::milliseconds kMaxSpacing{std::chrono::hours(24)};  // version 1
inline constexpr std::chrono::milliseconds kMaxPause{std::chrono::hours(24)};
inline constexpr unsigned kMaxConnections = 1000;  // [delivery] concurrency_per_domain's maximum
inline constexpr size_t kMaxDomainLength = 255;  // RFC 1035 §2.3.4

// Parse the file text:
//   hikyaku-destinations 2
//   # comment lines and blank lines are ignored
//   <domain> <pause-ms> <paused-until-unix-seconds> <connections> <until-unix-seconds>
// or a version 1 file:
//   hikyaku-destinations 1
//   <domain> <spacing-ms> <until-unix-seconds>
// (spacing checked as before, then dropped: pause 0, paused_until epoch,
// connections 1). Expiry is the caller's decision (it has the clock).
ParsedStates parse(std::string_view text);

// The version 2 file text for `entries` (header, a comment naming the
// fields, one line each). An entry parse() would refuse (a domain with a
// space, a pause or count out of range) is left out, so parse(format(x))
// gives back x's valid entries.
std::string format(const std::vector<DestinationState>& entries);

// Whether parse() accepts `domain` as a domain token.
bool valid_domain(std::string_view domain);

}  // namespace hikyaku::delivery::state
