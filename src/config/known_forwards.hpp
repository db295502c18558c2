// Purpose:   The hidden forwards the server has known, kept across restarts
//            (DATA_DIR/state/known-forwards), so that mail waiting for a
//            hidden [[forward]] that the operator removed (or a user's
//            `hikyaku forward clear`) is still handled as that forward's
//            when it is retried: diverted along its fallback chain, never
//            bounced to its sender with the address in the report.
//            Nothing new is planned to a removed forward (no [[address]]
//            names it); it is only known. The file holds every hidden
//            forward of the running configuration ("configured") and each
//            removed one with the time of its removal; a removed one is
//            forgotten, at a start or a reload, once [delivery] expire has
//            passed since its removal and no unfinished delivery in the
//            queue is planned to it or waits at it (a waiting copy, a
//            notice to it, a DSN to it), directly or through the fallback
//            links of other removed ones.
//            Parsing, formatting and the two steps as plain functions,
//            reading and writing the file; the server reads it at start and
//            writes it after start-up and after every reload
//            (app/server.cpp); `hikyaku queue list|show` read it to keep
//            the removed addresses out of what they print.
// Standards: none (our format).
// Trust:     the file is ours, under data_dir, but may be damaged or edited
//            by hand: every line is validated as a [[forward]] would be
//            (addresses, mailbox names, a chain ending in a mailbox); a bad
//            line is reported with its number and ignored, never trusted
//            partially.
// Concurrency: plain functions on values; thread-safe.
// Durability: written like every state file (base/file.hpp: tmp, fsync,
//            rename, fsync the directory): the old or the new state.
// Errors:    parse_known_forwards() never fails as a whole: good entries
//            plus one Issue per bad line (a bad header: every line ignored);
//            read_known_forwards() turns them and an unreadable file into
//            warnings "FILE:LINE: message"; a failed write is an Error.
#pragma once

#include <chrono>
#include <cstddef>
#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"

namespace hikyaku::config {

// The first line of the file; an incompatible format changes the number.
inline constexpr std::string_view kKnownForwardsHeader = "hikyaku-known-forwards 1";
// Where the server keeps it, under data_dir.
inline constexpr std::string_view kKnownForwardsFile = "state/known-forwards";

struct KnownForward {
  Forward forward;  // hidden; its options as last configured (spam: not kept, it only matters when planning)
  // When it was removed from the configuration (whole seconds); nullopt:
  // configured when the state was written.
  std::optional<std::chrono::system_clock::time_point> removed;

  bool operator==(const KnownForward&) const = default;
};

struct KnownForwardsIssue {
  size_t line = 0;  // 1-based
  std::string message;
};

struct ParsedKnownForwards {
  std::vector<KnownForward> entries;  // in file order, addresses unique
  std::vector<KnownForwardsIssue> issues;
  bool foreign = false;  // not this format (no header): nothing was read
};

// The file text:
//   hikyaku-known-forwards 1
//   # comment lines and blank lines are ignored
//   <address> <removed> <defer-limit-s> <notify> <dmarc> <source-ipv4> <source-ipv6> <source-name> <fallback>...
// <removed>: Unix seconds, or "-" (configured); <notify>: "yes" or "no";
// the other fields as base::escape_field writes them (an empty one is
// "%-"; spaces, control bytes, non-ASCII and '%' are %XX), and a leading
// '#' as %23. A line may end in CRLF (an editor's).
ParsedKnownForwards parse_known_forwards(std::string_view text);

// The file text for `entries`. An entry parse_known_forwards() would refuse
// (not hidden, a bad address or chain, a duplicate) is left out, so that
// parsing the text gives back exactly the valid entries.
std::string format_known_forwards(const std::vector<KnownForward>& entries);

// Start and reload, with `config` just loaded: its hidden forwards become
// the configured entries of the returned state; each entry of `known` that
// `config` does not name is added to config.forwards (so hiddenness,
// fallback chain and options stay known) and kept in the state, with its
// removal time, or `now` (rounded up to the second) if it was configured
// until now. A removed one whose fallback names a [[mailbox]] that is gone
// too adds a warning to config.warnings (its waiting mail would be lost at
// a refusal; the address is not named). Returns the new state, the
// configured entries first.
std::vector<KnownForward> remember_forwards(Config& config, const std::vector<KnownForward>& known,
                                            std::chrono::system_clock::time_point now);

// Drop the removed entries nothing in the queue needs: removed at least
// `keep` ago ([delivery] expire) and not reachable from `in_use` (the
// forward addresses, lower case, that unfinished slots are planned to or
// wait at: queue::Scheduler::forwards_in_use) through the fallback links
// of the known entries.
void forget_forwards(std::vector<KnownForward>& known, std::chrono::system_clock::time_point now,
                     std::chrono::seconds keep, const std::set<std::string, std::less<>>& in_use);

struct KnownForwardsFile {
  std::vector<KnownForward> entries;
  std::vector<std::string> warnings;  // "FILE:LINE: message; line ignored", or why the file was not read
  // The file is there but was not read at all (unreadable, or not this
  // format): it must not be overwritten with what it lacks (the caller
  // moves it aside).
  bool unread = false;
};

// The file at `path`; a missing file is an empty state, silently.
KnownForwardsFile read_known_forwards(const std::filesystem::path& path);

// Replace the file at `path` with `entries` (durably).
base::Status write_known_forwards(const std::filesystem::path& path, const std::vector<KnownForward>& entries);

}  // namespace hikyaku::config
