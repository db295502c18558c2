// Purpose:   The server's counters (messages received, delivery outcomes,
//            login failures) and the forward-duration
//            histogram, kept in one Metrics object that app creates and
//            passes down by pointer to the components that already log
//            those events (no global state, STYLE R11); and their renderings:
//            the Prometheus text exposition format 0.0.4 (/metrics) and a
//            server-rendered HTML status page (/) with the delivery history's
//            charts (history::Summary: an inline SVG, no script, no external
//            asset, readable on a phone).
// Standards: Prometheus text-based exposition format 0.0.4 (HELP, TYPE,
//            counters ending in _total, histograms as cumulative _bucket{le}
//            with +Inf, _sum and _count).
// Trust:     labels are fixed enumerations chosen here, never text from a
//            message, a peer or the configuration: no address (a hidden
//            forward's least of all) can reach a label or the page.
// Concurrency: every update is a relaxed atomic operation, callable from any
//            thread (queue threads, the event loop, the login pool);
//            snapshot() reads them without a lock (a scrape may see one
//            counter moved before another; Prometheus tolerates that).
// Errors:    none.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "history/history.hpp"

namespace hikyaku::metrics {

// The listener families of [limits] (one connection pool each).
enum class Protocol { smtp, submission, pop3, imap };
inline constexpr std::array<std::string_view, 4> kProtocols{"smtp", "submission", "pop3", "imap"};

// A delivery slot's target kind and what the delivery policy made of one
// attempt (policy::Disposition::word()).
enum class Target { mailbox, forward, relay };
inline constexpr std::array<std::string_view, 3> kTargets{"mailbox", "forward", "relay"};
enum class Outcome { delivered, deferred, diverted, failed };
inline constexpr std::array<std::string_view, 4> kOutcomes{"delivered", "deferred", "diverted", "failed"};

// The upper bounds (seconds) of the forward-duration histogram: a Gmail
// conversation takes about a second; timeouts reach minutes.
inline constexpr std::array<double, 11> kDurationBuckets{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};

// The numbers at one moment, counters and gauges together.
struct Snapshot {
  uint64_t messages_received = 0;
  std::array<std::array<uint64_t, kOutcomes.size()>, kTargets.size()> deliveries{};
  // Per bucket, not cumulative (the rendering accumulates); the last is +Inf.
  std::array<uint64_t, kDurationBuckets.size() + 1> forward_buckets{};
  double forward_seconds_sum = 0;
  uint64_t forward_count = 0;
  std::array<uint64_t, kProtocols.size()> auth_failures{};
  // Filled by whoever owns them (app): the DNS answer cache's own counters
  // (it lives on the event loop, where the status listener runs), the
  // scheduler's queue, the listeners' connection pools, the spool.
  uint64_t dns_queries = 0;  // lookups the answer cache asked upstream
  uint64_t dns_cached = 0;   // lookups answered from the answer cache
  uint64_t queue_messages = 0;
  std::array<uint64_t, kProtocols.size()> connections{};
  bool spool_writable = true;
  // Destinations in a rate-limit slow-down (the SMTP agent's): the domain
  // and what it allows now ("paused until ...", "2 connections at once").
  std::vector<std::pair<std::string, std::string>> slowed_down;
};

class Metrics {
 public:
  // A message was committed to the spool (its 250 is on the way).
  void message_received() { messages_received_.fetch_add(1, std::memory_order_relaxed); }
  // One settled delivery attempt.
  void delivery(Target target, Outcome outcome) {
    deliveries_[index(target)][index(outcome)].fetch_add(1, std::memory_order_relaxed);
  }
  // How long one forward attempt took (hand-over to the agent → its result).
  void forward_duration(double seconds);
  // A failed login (wrong password, unknown name, locked out).
  void auth_failure(Protocol protocol) { auth_failures_[index(protocol)].fetch_add(1, std::memory_order_relaxed); }
  // At start: the counts the delivery history holds (history::Totals), so
  // that the counters go on from them across a restart.
  void restore(const history::Totals& totals);
  // The counters now; the rest of Snapshot is left for the caller to fill.
  Snapshot snapshot() const;

 private:
  template <typename E>
  static size_t index(E e) {
    return static_cast<size_t>(e);
  }
  std::atomic<uint64_t> messages_received_{0};
  std::array<std::array<std::atomic<uint64_t>, kOutcomes.size()>, kTargets.size()> deliveries_{};
  std::array<std::atomic<uint64_t>, kDurationBuckets.size() + 1> forward_buckets_{};
  std::atomic<uint64_t> forward_micros_{0};  // the sum, in microseconds (integer atomics only)
  std::array<std::atomic<uint64_t>, kProtocols.size()> auth_failures_{};
};

// The Prometheus text exposition (format 0.0.4) of `s`: served at /metrics
// with Content-Type "text/plain; version=0.0.4; charset=utf-8".
std::string render_prometheus(const Snapshot& s);
// A small self-contained HTML page (no scripts, no external assets) with
// the same numbers and, when there is a history, the forwards, diversions
// and deferrals per hour over 7 days, the forward latency percentiles and
// the latest diverted messages. `hostname` is the configured one; every
// text is HTML-escaped (From and Subject are the sender's).
std::string render_status_page(const Snapshot& s, const history::Summary* history, std::string_view hostname);

}  // namespace hikyaku::metrics
