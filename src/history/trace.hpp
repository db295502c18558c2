// Purpose:   `hikyaku trace ID|ADDRESS` (issue 16 item 1): the timeline of
//            a message from the history (history.hpp) — received from whom
//            and the inbound check results, each attempt with its reply, the
//            retry times, a diversion with its reason and where the copy
//            went, the notices and DSNs, the removal. An address names every
//            message it sent or was sent to (the latest kMaxMessages).
// Trust:     the history holds only text fit to show (hidden forwards are
//            "forward:<hidden>"); the query is bound, never spliced into SQL.
// Concurrency: opens its own read-only connection: it works beside a
//            running server (WAL) and without one.
// Errors:    a missing or unreadable database is an Error naming the file.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.hpp"
#include "history/history.hpp"

namespace hikyaku::history {

struct Step {
  TimePoint time{};
  std::string text;  // one or more lines, without the time
};

struct Timeline {
  std::string queue_id;
  std::vector<Step> steps;  // in time order
};

inline constexpr size_t kMaxMessages = 20;

// A query with an '@' is an address (case-insensitive: the sender, or a
// recipient), "<>" the null sender; anything else a queue id.
base::Result<std::vector<Timeline>> trace(const std::filesystem::path& file, std::string_view query);

// The text `hikyaku trace` prints: each timeline with UTC times.
std::string format(const std::vector<Timeline>& timelines);

}  // namespace hikyaku::history
