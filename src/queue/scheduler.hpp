// Purpose:   The queue manager (Postfix qmgr): takes every pending slot of
//            every queued message to the DeliveryAgent registered for its
//            target kind, asks policy::DeliveryPolicy what each attempt's
//            result means (decide(): delivered, retry at T, divert to the
//            next link, fail — the delivery contract, one pure function),
//            records the new slot state in the Spool before acting on it,
//            and enqueues the notices and DSNs a disposition carries as new
//            messages (policy::ReportWriter builds them). It interprets no
//            outcome itself.
// Rules:     * A message is attempted the moment it is submitted: no polling.
//            * submit_staged() ("forward at once"): a message staged and not
//              yet committed (Spool::stage) has its forward slots handed to
//              their agent at once, on the caller's thread, while the spool
//              file is written and synced; local slots wait for committed().
//              Every outcome is held until committed() and only then
//              recorded and acted on; abandoned() (the commit failed, the
//              client gets 451 and retries) discards them: at worst a
//              duplicate forward. While the spool's commits are in doubt
//              (Spool::commit_in_doubt(): the last one failed, or the disk
//              has no room for this message), nothing starts before
//              committed(): every retry of a 452'd message would otherwise
//              reach the far side again (spool.hpp rule 6).
//            * A diversion to a local mailbox link is not recorded before the
//              mailbox attempt (one fsync less on the refusal path): the
//              mailbox outcome's record, or the unlink, carries the whole
//              slot state. A crash in between repeats the refused attempt
//              and diverts again: a duplicate, never a loss. Such a
//              diversion is acted on even before the commit (the fallback
//              copy is written while the spool file is, and the commit
//              then waits for it: the next rule); its notice waits for the
//              commit.
//            * A message whose every target is reached before its commit
//              flushes needs no queue file (spool.hpp rule 7):
//              finished_before_commit() answers the commit, waiting only for
//              an early diversion's fallback copy, never for a far side;
//              committed(id, Committed::finished) then settles the held
//              outcomes with nothing to record or unlink.
//            * Settling an outcome, in this order: decide; append the new
//              state to the spool file (fdatasync); only then update memory,
//              log, enqueue reports, reschedule, or remove the file. A crash
//              between the agent's success and the record repeats the
//              delivery after restart (a duplicate, never a loss).
//            * A slot whose kind has no registered agent is deferred (4.3.0),
//              never dropped.
//            * The file is removed when every slot is final; the last slot's
//              final state is not appended (the unlink records it).
// Standards: RFC 5321 §4.5.4.1 (retry strategy; the intervals are the
//            policy's), §6.1 (responsibility once 250 is sent).
// Trust:     no network input; logs name targets as the policy describes
//            them (hidden forwards: "forward:<hidden>") and redact replies.
// Concurrency: every public method is thread-safe. The scheduler's own
//            queue threads (std::thread, SchedulerOptions::threads) run due
//            attempts and settle outcomes; they may block (spool records,
//            Maildir writes). Agents may call `done` from any thread; an
//            outcome reported on another thread (the event loop) is queued
//            for a queue thread. Nothing runs under the scheduler's lock but
//            the pure policy calls. stop() waits for in-flight deliveries.
// Errors:    spool I/O errors are logged (queue logger) and retried; nothing
//            throws.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "base/clock.hpp"
#include "base/live.hpp"
#include "base/result.hpp"
#include "history/history.hpp"
#include "metrics/metrics.hpp"
#include "policy/delivery_policy.hpp"
#include "policy/reports.hpp"
#include "policy/rules.hpp"
#include "queue/delivery_agent.hpp"
#include "queue/flush_filter.hpp"
#include "queue/spool.hpp"

namespace hikyaku::queue {

struct SchedulerOptions {
  unsigned threads = 4;          // queue threads (attempts, settling)
  // Remote deliveries (forwards, routes) handed to their agent and not yet
  // done. Local ones do not count: they are quick and run on the queue
  // threads, so a line of forwards waiting for slow far sides never holds
  // back the mailbox copies.
  unsigned max_in_flight = 256;
  // Counted when set: messages committed (received), each settled attempt
  // by target kind and disposition, and the duration of forward attempts.
  metrics::Metrics* metrics = nullptr;
  // Written when set (history/history.hpp): each message taken (at its
  // commit, or a report at its enqueue), each settled attempt, each report
  // queued, each removal. Appending never blocks on the database.
  history::History* history = nullptr;
};

class Scheduler {
 public:
  // All references must outlive the scheduler. Each decision reads the
  // rules current at that moment (`hikyaku reload` may replace them).
  Scheduler(Spool& spool, const base::Live<policy::Rules>& rules, base::Clock& clock, SchedulerOptions options = {});
  ~Scheduler();  // stop()  NOLINT(bugprone-exception-escape): see scheduler.cpp
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Before start(). The agent must outlive the scheduler.
  void register_agent(mail::Target::Kind kind, DeliveryAgent& agent);

  // Recover the spool (Spool::recover), load every queued message, start the
  // queue threads. Call it before accepting mail: recovery deletes
  // spool/tmp/*. Unfinished slots are attempted now, or at their recorded
  // next-attempt time.
  base::Status start();
  // A message just enqueued (durable): attempt it now (loads it).
  void submit(const std::string& queue_id);
  // A message staged (Spool::stage) and not yet committed, with its bytes so
  // that agents need not read the file (see Rules). Must be followed by
  // committed() or abandoned() for the same id.
  void submit_staged(SpooledMessage message, std::shared_ptr<const mail::Message> bytes);
  // The commit's question (Spool::commit, rule 7), asked on its thread
  // before the queue file is made and before its flush: has every target
  // of this staged message been reached? It never waits for a far side;
  // while an early diversion's fallback copy is being written it waits
  // for that copy (at most 2 s, or until halt()), so that its flush and the
  // commit's do not compete. True: the commit writes no file and
  // committed(…, Committed::finished) follows.
  bool finished_before_commit(const std::string& queue_id);
  void committed(const std::string& queue_id, Committed how = Committed::queued);
  void abandoned(const std::string& queue_id);
  // Start no attempt from now on; what is in flight finishes and is settled
  // (by stop()). Shutdown calls it before stopping the agents, so that no
  // queue thread hands an agent a delivery after the agent has stopped.
  void halt();
  // halt(), wait for in-flight attempts, join the threads.
  void stop();

  // Every waiting slot that `filter` matches is due now (`hikyaku queue
  // flush`); how many. A destination's rate-limit pause still holds (the
  // SMTP agent answers with its end at once).
  size_t flush(const FlushFilter& filter = {});
  // Re-read the clock (a test moved its fake clock).
  void wake();
  // Forget a message that an operator deleted (`hikyaku queue delete`);
  // an in-flight attempt still completes, its outcome is then discarded.
  void forget(const std::string& queue_id);

  // Messages the scheduler is holding.
  size_t active_messages() const;
  // The forward addresses (lower case) that unfinished slots are planned
  // to or wait at: what config/known_forwards.hpp must not forget.
  std::set<std::string, std::less<>> forwards_in_use() const;
  // For tests: wait (real time) until nothing is in flight or due now.
  bool wait_idle(std::chrono::milliseconds timeout);

 private:
  struct Active {
    SpooledMessage message;
    std::vector<bool> in_flight;  // per slot
    // Per slot: handed to be attempted (a Task in ready_, or attempt() on
    // its way). A Task whose slot is not marked is a stale duplicate.
    std::vector<bool> queued;
    unsigned in_flight_count = 0;
    bool forgotten = false;
    bool durable = true;          // false between submit_staged and committed
    std::shared_ptr<const mail::Message> bytes;  // dropped when nothing is in flight
    std::vector<std::optional<policy::AttemptResult>> held;  // per slot, until durable
    std::vector<policy::NoticeFacts> notices;  // of diversions decided before durable
    // Per slot, before durable: an early diversion's fallback copy is on
    // its way (finished_before_commit waits for it).
    std::vector<bool> diverting;
    bool queue_file = true;  // false: finished before its commit (spool.hpp rule 7)
  };
  struct Task {
    std::string id;
    size_t slot;
  };
  // Due slots in two lines (see SchedulerOptions::max_in_flight).
  struct Ready {
    std::deque<Task> remote;
    std::deque<Task> local;
    size_t size() const { return remote.size() + local.size(); }
    bool empty() const { return remote.empty() && local.empty(); }
  };
  struct Settle {
    std::string id;
    size_t slot;
    policy::AttemptResult result;
    // The rules an early decision was made with (on_result), so that a
    // reload in between cannot change it; null: the current ones.
    std::shared_ptr<const policy::Rules> rules;
  };

  void run();
  std::optional<DeliveryRequest> begin_attempt_locked(const Task& task);
  DeliveryAgent* agent_for(mail::Target::Kind kind) const;
  void attempt(const Task& task, std::unique_lock<std::mutex>& lock);
  void on_result(const std::string& id, size_t slot, policy::AttemptResult result);
  bool on_queue_thread_locked() const;
  void settle(const std::string& id, size_t slot, const policy::AttemptResult& result,
              std::shared_ptr<const policy::Rules> decided_with = nullptr);
  bool settle_next(std::unique_lock<std::mutex>& lock);
  bool diverts_to_mailbox_locked(const Active& a, size_t slot, const policy::AttemptResult& result,
                                  const policy::Rules& rules);
  void schedule_locked(Active& a, const std::string& id, size_t slot);
  void move_due_locked(base::Clock::time_point now);
  void make_ready_locked(const std::string& id, size_t slot);
  void push_ready_locked(Active& a, const std::string& id, size_t slot);
  void wake_threads_locked(size_t new_work);
  void add_message(SpooledMessage message, std::shared_ptr<const mail::Message> bytes = nullptr,
                   bool durable = true, bool wait_for_commit = false);
  policy::MessageFacts facts(const SpooledMessage& message) const;
  // A message as a notice or DSN will quote it: copied under mu_ (its
  // Active may go once the lock is released), quoted by original() after.
  struct Quote {
    SpooledMessage message;
    std::shared_ptr<const mail::Message> bytes;
  };
  // What a notice or DSN quotes; reads the spool file when `bytes` is null,
  // so never called under mu_.
  policy::OriginalMessage original(const SpooledMessage& message,
                                   const std::shared_ptr<const mail::Message>& bytes) const;
  void enqueue_report(const std::string& about, base::Result<policy::GeneratedMessage> report);
  history::Received received_row(const SpooledMessage& message, const std::shared_ptr<const mail::Message>& bytes,
                                 const policy::DeliveryPolicy& policy) const;
  bool idle_locked() const;

  Spool& spool_;
  const base::Live<policy::Rules>& rules_;
  base::Clock& clock_;
  SchedulerOptions options_;
  std::map<mail::Target::Kind, DeliveryAgent*> agents_;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // queue threads: work or stop
  std::condition_variable idle_cv_;  // wait_idle(), stop()
  std::condition_variable copy_cv_;  // finished_before_commit(): a fallback copy's outcome
  std::map<std::string, Active> active_;
  Ready ready_;
  std::deque<Settle> settle_;        // outcomes to settle on a queue thread
  std::set<std::tuple<base::Clock::time_point, std::string, size_t>> timers_;
  unsigned in_flight_ = 0;         // every delivery handed to an agent, until settled
  unsigned remote_in_flight_ = 0;  // of those, the remote ones (max_in_flight)
  bool stopping_ = false;
  bool started_ = false;
  std::mt19937_64 rng_;
  std::vector<std::thread> threads_;
};

}  // namespace hikyaku::queue
