// Purpose:   The delivery history (issue 16 item 3): every message the queue
//            takes (who sent it, from where, the inbound check results, its
//            From and Subject), every settled attempt (target, result, the
//            redacted reply, how long it took, the retry time or where a
//            diversion went), the notices and DSNs it caused and its removal,
//            kept in a small SQLite database in the data directory. Read by
//            `hikyaku trace` (trace.hpp), by the status page (summary():
//            forwards, diversions and deferrals per hour over 7 days, the
//            latest diversions, forward latency percentiles) and by the
//            counters of /metrics when the server starts again (totals()).
// Rules:     * Off the hot path: the queue threads only append to an
//            in-memory list (a lock, a move); one writer thread inserts in
//            batches (a second or 5,000 rows), one transaction each. Past
//            kMaxPending waiting rows new ones are dropped and counted, never
//            waited for: the history must not slow or stop the delivery of
//            mail. The summary is kept up to date with the rows written
//            (summary_window.hpp), not queried again: its cost does not
//            grow with the traffic.
//            * Bounded: rows older than the retention are deleted at open
//            and then every hour.
//            * Not a durability record: WAL with synchronous=NORMAL (a power
//            cut may lose the last seconds of history, never a message; the
//            spool is the record of the delivery contract).
// Trust:     callers pass text that is fit to show: targets as the policy
//            describes them (hidden forwards "forward:<hidden>"), replies
//            and header fields already redacted. Nothing here reads a
//            message or the network.
// Concurrency: every public method is thread-safe; summary() and totals()
//            read what the writer thread last computed (no SQL on the
//            caller's thread).
// Errors:    open() fails with the file and SQLite's message; a failed
//            write later is logged (history logger) and its batch dropped.
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <filesystem>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "base/result.hpp"

struct sqlite3;

namespace hikyaku::history {

class SummaryWindow;

using TimePoint = std::chrono::system_clock::time_point;

// A message the queue took (committed to the spool, or a generated report).
struct Received {
  TimePoint time{};
  std::string queue_id;
  std::string origin;      // "received", "submitted", "notice", "dsn"
  std::string sender;      // the envelope's reverse-path, "" for <>
  std::string client;      // "ip 192.0.2.1 helo mx.example" / "login user" / "about Q123"
  std::vector<std::string> recipients;
  std::string from;        // the From: field, one line
  std::string subject;     // the Subject: field, one line
  std::string checks;      // our Authentication-Results value (received mail)
};

// One settled delivery attempt.
struct Attempt {
  TimePoint time{};
  std::string queue_id;
  std::string recipient;   // the envelope recipient the slot is for
  std::string target_kind; // "mailbox", "forward", "relay"
  std::string target;      // as the policy describes it ("forward:<hidden>")
  std::string result;      // "delivered", "deferred", "diverted", "failed"
  std::string reply;       // redacted
  double seconds = -1;     // how long the attempt took; < 0: not timed
  bool tls = false;        // the far side answered over TLS
  TimePoint retry{};       // deferred: when it is tried again
  std::string next;        // diverted: the target that takes the copy
};

// Anything else about a message: "notice Q2 queued", "removed".
struct Note {
  TimePoint time{};
  std::string queue_id;
  std::string kind;        // "report", "removed"
  std::string text;
};

// What the status page shows (the writer's last computation).
struct Summary {
  static constexpr size_t kHours = 7 * 24;
  static constexpr size_t kDiversions = 50;
  TimePoint first_hour{};  // the start of hours[0]; hours[kHours-1] holds now
  // Per hour, oldest first: forwards delivered, diverted, deferred.
  std::array<std::array<uint32_t, 3>, kHours> hours{};
  struct Diversion {
    TimePoint time{};
    std::string from, subject, reason, mailbox;
  };
  std::vector<Diversion> diversions;  // the latest first, at most kDiversions
  // Forward attempts of the last 7 days (at most the latest 10,000 timed).
  uint64_t forward_attempts = 0;
  double p50 = -1, p90 = -1, p99 = -1;  // seconds; < 0: no timed attempt
  uint64_t forwards_delivered = 0;      // of the last 7 days
  uint64_t forwards_delivered_tls = 0;  // of those, over TLS
  uint64_t dropped = 0;                 // rows not written (queue full)
};

// Every row in the database, for the counters of /metrics after a restart.
struct Totals {
  uint64_t received = 0;  // messages the queue took, reports excluded
  // (target kind, result) → attempts
  std::vector<std::tuple<std::string, std::string, uint64_t>> attempts;
};

// The database's name in the data directory.
inline constexpr const char* kFileName = "history.sqlite";

struct Options {
  std::chrono::hours retention{24 * 30};
};

class History {
 public:
  static constexpr size_t kMaxPending = 100'000;
  // One transaction per batch: what came within kBatchDelay of the first
  // row, or kBatchRows rows. A second: the status page shows nothing
  // fresher anyway, and each commit writes the B-trees' last pages to the
  // WAL again, so fewer commits are fewer bytes on the spool's disk.
  static constexpr auto kBatchDelay = std::chrono::seconds(1);
  static constexpr size_t kBatchRows = 5'000;

  // Opens (creates) the database, deletes what is past the retention,
  // computes the first summary and starts the writer thread.
  static base::Result<std::unique_ptr<History>> open(const std::filesystem::path& file, Options options = {});
  ~History();  // stop()
  History(const History&) = delete;
  History& operator=(const History&) = delete;

  void record(Received r) { push(std::move(r)); }
  void record(Attempt a) { push(std::move(a)); }
  void record(Note n) { push(std::move(n)); }

  Summary summary() const;
  Totals totals() const;  // as of open()
  // Wait (real time) until every row recorded so far is written and the
  // summary recomputed. For tests and a clean stop.
  bool flush(std::chrono::milliseconds timeout);
  // Write what is pending and end the writer thread.
  void stop();

 private:
  using Row = std::variant<Received, Attempt, Note>;
  History(sqlite3* db, Options options);
  void push(Row row);
  void run();
  void write(std::vector<Row>& rows);
  void load_summary(TimePoint now);
  void publish_summary(TimePoint now);
  void prune(TimePoint now);

  sqlite3* db_;
  Options options_;
  Totals totals_;
  mutable std::mutex mu_;
  std::condition_variable cv_;       // the writer: rows or stop
  std::condition_variable done_cv_;  // flush()
  std::deque<Row> pending_;
  uint64_t queued_ = 0;   // rows accepted so far
  uint64_t written_ = 0;  // of those, written (or given up) and summarised
  uint64_t dropped_ = 0;
  unsigned flush_waiters_ = 0;
  bool stopping_ = false;
  bool writer_ended_ = false;
  Summary summary_;
  std::unique_ptr<SummaryWindow> window_;  // the writer's; summary_ is its last copy
  std::thread writer_;
};

}  // namespace hikyaku::history
