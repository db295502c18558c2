#include "history/history.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <unistd.h>

#include <iterator>
#include <utility>

#include "base/log.hpp"
#include "history/sqlite.hpp"
#include "history/summary_window.hpp"

namespace hikyaku::history {

namespace {

constexpr auto kHour = std::chrono::hours(1);

std::string joined(const std::vector<std::string>& parts) {
  std::string out;
  for (const auto& p : parts) out += (out.empty() ? "" : "\n") + p;
  return out;
}

}  // namespace

base::Result<std::unique_ptr<History>> History::open(const std::filesystem::path& file, Options options) {
  // Owner-only from the start: the history names senders and subjects.
  if (int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600); fd >= 0) ::close(fd);
  auto db = Database::open(file, /*read_only=*/false);
  if (!db) return db.error();
  if (auto st = db->exec(kSchema); !st) return st.error();
  auto h = std::unique_ptr<History>(new History(db->release(), options));
  const TimePoint now = std::chrono::system_clock::now();
  h->prune(now);
  {
    Database view(h->db_, /*owned=*/false);
    Statement received(view, "SELECT count(*) FROM messages WHERE origin IN ('received', 'submitted')");
    if (received.step()) h->totals_.received = static_cast<uint64_t>(received.integer(0));
    Statement attempts(view, "SELECT target_kind, result, count(*) FROM events WHERE kind = 'attempt' GROUP BY 1, 2");
    while (attempts.step())
      h->totals_.attempts.emplace_back(attempts.text(0), attempts.text(1), static_cast<uint64_t>(attempts.integer(2)));
  }
  h->load_summary(now);
  h->writer_ = std::thread([p = h.get()] { p->run(); });
  return h;
}

History::History(sqlite3* db, Options options) : db_(db), options_(options) {}

History::~History() {
  stop();
  sqlite3_close(db_);
}

void History::push(Row row) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    if (pending_.size() >= kMaxPending) {
      ++dropped_;
      return;
    }
    pending_.push_back(std::move(row));
    ++queued_;
    // The writer is told of the first row (it may sleep for an hour) and of
    // a full batch; rows in between just wait for the batch: a wake-up per
    // row would cost the queue threads a context switch each.
    if (pending_.size() != 1 && pending_.size() != kBatchRows) return;
  }
  cv_.notify_one();
}

Summary History::summary() const {
  std::lock_guard lock(mu_);
  Summary s = summary_;
  s.dropped = dropped_;
  return s;
}

Totals History::totals() const {
  std::lock_guard lock(mu_);
  return totals_;
}

bool History::flush(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  const uint64_t target = queued_;
  ++flush_waiters_;
  cv_.notify_one();
  const bool ok = done_cv_.wait_for(lock, timeout, [&] { return written_ >= target || writer_ended_; });
  --flush_waiters_;
  return ok && written_ >= target;
}

void History::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_one();
  if (writer_.joinable()) writer_.join();
}

// The writer: once rows wait, let more come for kBatchDelay (or until
// kBatchRows), write them in one transaction, publish the summary at most
// once a second (at once when someone waits in flush()), prune every hour.
void History::run() {
  // Named, so that `top -H` and the benchmark (bench/forward.sh) can tell
  // what the history costs apart from the rest of the server.
  ::pthread_setname_np(::pthread_self(), "history");
  auto next_prune = std::chrono::system_clock::now() + kHour;
  auto last_refresh = std::chrono::steady_clock::now();
  uint64_t written = 0;  // rows written, not yet published in written_
  bool stale = false;
  std::unique_lock lock(mu_);
  for (;;) {
    const auto wake = stale ? last_refresh + std::chrono::seconds(1) : std::chrono::steady_clock::now() + kHour;
    cv_.wait_until(lock, wake, [&] { return !pending_.empty() || stopping_ || (stale && flush_waiters_ > 0); });
    if (!pending_.empty()) {
      cv_.wait_for(lock, kBatchDelay,
                   [&] { return stopping_ || flush_waiters_ > 0 || pending_.size() >= kBatchRows; });
    }
    std::vector<Row> rows(std::make_move_iterator(pending_.begin()), std::make_move_iterator(pending_.end()));
    pending_.clear();
    const bool stop_now = stopping_;
    lock.unlock();

    if (!rows.empty()) {
      write(rows);
      written += rows.size();
      stale = true;
    }
    const TimePoint now = std::chrono::system_clock::now();
    if (now >= next_prune) {
      prune(now);
      next_prune = now + kHour;
      stale = true;
    }
    lock.lock();
    const bool waited_on = flush_waiters_ > 0;
    lock.unlock();
    if (stale && (waited_on || stop_now || std::chrono::steady_clock::now() - last_refresh >= std::chrono::seconds(1))) {
      publish_summary(now);
      last_refresh = std::chrono::steady_clock::now();
      stale = false;
    }
    lock.lock();
    if (!stale) written_ = written;
    done_cv_.notify_all();
    if (stop_now && pending_.empty()) break;
  }
  writer_ended_ = true;
  done_cv_.notify_all();
}

void History::write(std::vector<Row>& rows) {
  Database db(db_, /*owned=*/false);
  auto log = base::logger("history");
  if (auto st = db.exec("BEGIN"); !st) {
    log->error("history: {}; {} rows not written", st.error().message, rows.size());
    return;
  }
  Statement message(db,
                    "INSERT OR REPLACE INTO messages (queue_id, time, origin, sender, client, recipients, from_field, "
                    "subject, checks) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)");
  Statement diverted(db, "SELECT from_field, subject FROM messages WHERE queue_id = ?1");
  Statement event(db,
                  "INSERT INTO events (time, queue_id, kind, recipient, target_kind, target, result, reply, seconds, "
                  "retry, next, tls) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)");
  for (auto& row : rows) {
    if (const auto* r = std::get_if<Received>(&row)) {
      message.bind(1, r->queue_id).bind(2, millis(r->time)).bind(3, r->origin).bind(4, r->sender).bind(5, r->client);
      message.bind(6, joined(r->recipients)).bind(7, r->from).bind(8, r->subject).bind(9, r->checks);
      message.run();
      window_->name_diversions(r->queue_id, r->from, r->subject);
    } else if (const auto* a = std::get_if<Attempt>(&row)) {
      event.bind(1, millis(a->time)).bind(2, a->queue_id).bind(3, "attempt").bind(4, a->recipient);
      event.bind(5, a->target_kind).bind(6, a->target).bind(7, a->result).bind(8, a->reply).bind(9, a->seconds);
      event.bind(10, a->retry == TimePoint{} ? int64_t{0} : millis(a->retry)).bind(11, a->next);
      event.bind(12, int64_t{a->tls ? 1 : 0});
      event.run();
      if (SummaryWindow::is_forward(a->target_kind)) {
        window_->add_forwards(a->time, a->result, 1, a->tls ? 1 : 0);
        window_->add_latency(a->time, a->seconds);
      }
      if (a->result == "diverted") {
        Summary::Diversion d{a->time, "", "", a->reply, a->next};
        // The message's row may come later (name_diversions above).
        if (diverted.bind(1, a->queue_id).step()) {
          d.from = diverted.text(0);
          d.subject = diverted.text(1);
          (void)diverted.step();  // done: reset for the next one
        }
        window_->add_diversion(a->queue_id, std::move(d));
      }
    } else if (const auto* n = std::get_if<Note>(&row)) {
      event.bind(1, millis(n->time)).bind(2, n->queue_id).bind(3, n->kind).bind(4, "").bind(5, "").bind(6, "");
      event.bind(7, "").bind(8, n->text).bind(9, -1.0).bind(10, int64_t{0}).bind(11, "").bind(12, int64_t{0});
      event.run();
    }
  }
  if (auto st = message.status(); !st) log->error("history: {}", st.error().message);
  if (auto st = event.status(); !st) log->error("history: {}", st.error().message);
  if (auto st = diverted.status(); !st) log->error("history: {}", st.error().message);
  if (auto st = db.exec("COMMIT"); !st) {
    log->error("history: {}; {} rows not written", st.error().message, rows.size());
    (void)db.exec("ROLLBACK");
  }
}

void History::prune(TimePoint now) {
  Database db(db_, /*owned=*/false);
  const int64_t before = millis(now - options_.retention);
  Statement events(db, "DELETE FROM events WHERE time < ?1");
  events.bind(1, before).run();
  Statement messages(db, "DELETE FROM messages WHERE time < ?1");
  messages.bind(1, before).run();
  for (const auto* s : {&events, &messages}) {
    if (auto st = s->status(); !st) base::logger("history")->error("history: pruning: {}", st.error().message);
  }
  if (window_) window_->prune_diversions(from_millis(before));
}

// The summary as the database has it, once at open; write() keeps it up to
// date from then on.
void History::load_summary(TimePoint now) {
  Database db(db_, /*owned=*/false);
  window_ = std::make_unique<SummaryWindow>(now);
  const int64_t since = millis(now - Summary::kHours * kHour);
  Statement hours(db,
                  "SELECT time / 3600000, result, count(*), total(tls) FROM events WHERE kind = 'attempt' "
                  "AND target_kind IN ('forward', 'relay') AND time >= ?1 GROUP BY 1, 2");
  hours.bind(1, since);
  while (hours.step()) {
    window_->add_forwards(TimePoint(hours.integer(0) * kHour), hours.text(1), static_cast<uint64_t>(hours.integer(2)),
                          static_cast<uint64_t>(hours.real(3)));
  }
  Statement times(db,
                  "SELECT time, seconds FROM events WHERE kind = 'attempt' AND target_kind IN ('forward', 'relay') "
                  "AND seconds >= 0 AND time >= ?1 ORDER BY time DESC LIMIT ?2");
  times.bind(1, since).bind(2, static_cast<int64_t>(SummaryWindow::kLatencySamples));
  std::vector<std::pair<TimePoint, double>> latest;
  while (times.step()) latest.emplace_back(from_millis(times.integer(0)), times.real(1));
  for (auto it = latest.rbegin(); it != latest.rend(); ++it) window_->add_latency(it->first, it->second);
  Statement diversions(db,
                       "SELECT e.time, m.from_field, m.subject, e.reply, e.next, e.queue_id FROM events e "
                       "LEFT JOIN messages m ON m.queue_id = e.queue_id "
                       "WHERE e.result = 'diverted' ORDER BY e.time DESC LIMIT ?1");
  diversions.bind(1, static_cast<int64_t>(Summary::kDiversions));
  while (diversions.step()) {
    window_->add_oldest_diversion(diversions.text(5),
                                  Summary::Diversion{from_millis(diversions.integer(0)), diversions.text(1),
                                                     diversions.text(2), diversions.text(3), diversions.text(4)});
  }
  for (const auto* st : {&hours, &times, &diversions}) {
    if (auto e = st->status(); !e) base::logger("history")->error("history: summary: {}", e.error().message);
  }
  publish_summary(now);
}

void History::publish_summary(TimePoint now) {
  window_->advance(now);
  Summary s = window_->summary();
  std::lock_guard lock(mu_);
  summary_ = std::move(s);
}

}  // namespace hikyaku::history
