// Purpose:   The status page's numbers (Summary, history.hpp) kept up to
//            date as the history's writer writes rows: forward attempts per
//            hour over the last 7 days, the latest timed forwards for the
//            latency percentiles, the latest diversions. Loaded from the
//            database once at open; after that, the cost of a summary is that
//            of the rows written since the last one, not of the whole window
//            (a query over 7 days of rows every second grew with the traffic
//            it was measuring).
// Rules:     the same figures the database gives for the same rows: an
//            attempt counts in the hour of its time; hours older than the
//            window fall out as time advances; forward means target kind
//            "forward" or "relay"; diversions of any target kind are listed.
// Trust:     takes rows as the history stores them (already fit to show).
// Concurrency: none; the history's writer thread owns it.
// Errors:    none.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <utility>

#include "history/history.hpp"

namespace hikyaku::history {

class SummaryWindow {
 public:
  static constexpr size_t kLatencySamples = 10'000;

  explicit SummaryWindow(TimePoint now);

  // Moves the window so that its last hour holds `now` (never backwards).
  void advance(TimePoint now);
  // Adds `n` forward attempts with `result` in the hour of `time`, `tls` of
  // them delivered over TLS. Attempts older than the window are ignored.
  void add_forwards(TimePoint time, std::string_view result, uint64_t n, uint64_t tls);
  // A timed forward attempt, for the percentiles. Added in time order.
  void add_latency(TimePoint time, double seconds);
  // A diversion of message `queue_id`; the latest first. Added in time order
  // (add_oldest_diversion when loading the latest first).
  void add_diversion(std::string queue_id, Summary::Diversion d);
  void add_oldest_diversion(std::string queue_id, Summary::Diversion d);
  // The message's From and Subject, for its diversions listed without them:
  // a forward can be refused and diverted before the message's own row is
  // written (the forward overlaps the spool's flush).
  void name_diversions(const std::string& queue_id, const std::string& from, const std::string& subject);
  // Forget diversions older than `before` (the retention).
  void prune_diversions(TimePoint before);

  // A forward attempt as the writer sees it: the hour counters and, when
  // timed, the percentiles.
  static bool is_forward(std::string_view target_kind) { return target_kind == "forward" || target_kind == "relay"; }

  Summary summary() const;

 private:
  // Per hour: delivered, diverted, deferred, every attempt, delivered over TLS.
  enum Column { kDelivered, kDiverted, kDeferred, kAttempts, kDeliveredTls, kColumns };
  std::array<std::array<uint64_t, kColumns>, Summary::kHours> hours_{};
  TimePoint first_hour_{};
  std::deque<std::pair<TimePoint, double>> latency_;  // oldest first
  std::deque<std::pair<std::string, Summary::Diversion>> diversions_;  // (queue id, diversion), latest first
};

}  // namespace hikyaku::history
