// Purpose:   The queue manager (Postfix qmgr): takes every pending target of
//            every queued message to the DeliveryAgent registered for its
//            kind, records each outcome in the Spool before acting on it, and
//            retries temporary failures on config.delivery.retry (then every
//            last interval, each with up to 10% jitter) until
//            config.delivery.expire after arrival.
// Rules:     * A new message is attempted the moment submit() is called (the
//              caller calls it right after Spool::enqueue returned): no
//              polling delay. submit_staged() goes further ("forward at
//              once"): its forward slots are attempted from memory, on the
//              caller's thread (no worker wake-up on the way to the far
//              side), before the spool file is written and synced
//              (Spool::stage/commit); every
//              outcome is held until committed() and only then recorded or
//              acted on; abandoned() (the commit failed, the client gets 451
//              and will retry) discards them: at worst a duplicate forward.
//            * While commits fail, no forward starts before its commit
//              (spool rule 6): when Spool::commit_in_doubt() (the last
//              commit failed, or the disk has no room for the message),
//              submit_staged() starts nothing and committed() schedules the
//              forwards with the local slots. A client retrying a 451/452'd
//              message then reaches the far side once, with the retry that
//              was committed. The first successful commit resumes the fast
//              start.
//            * A diversion to a local mailbox link is not recorded before the
//              mailbox attempt (one fsync less on the refusal path): the
//              mailbox outcome's record, or the unlink, carries the whole
//              slot state. A crash in between repeats the refused attempt
//              and diverts again: a duplicate, never a loss. Such a
//              diversion is acted on even before the commit (the fallback
//              copy is written while the spool syncs); its notice waits for
//              the commit.
//            * Outcome handling, in this order: compute the new slot state;
//              append it to the spool file (fdatasync); only then update
//              memory, log, reschedule, or remove the file. A crash between
//              the agent's success and the record repeats the delivery after
//              restart (a duplicate, never a loss).
//            * delivered → final. permanent → ask the FallbackPolicy (issue 3)
//              for the next link; none → failed. temporary → if the message
//              is older than expire → ask the FallbackPolicy, none → failed;
//              else pending with the next retry time.
//            * A slot whose kind has no registered agent is deferred (4.3.0),
//              never dropped.
//            * The file is removed when every slot is final; the last slot's
//              final state is not appended (the unlink records it).
// Standards: RFC 5321 §4.5.4.1 (retry strategy: at least 30 min between
//            tries to one destination recommended, give up after 4–5 days).
// Trust:     no network input; logs name recipients and targets as the
//            FallbackPolicy describes them (hidden forwards: "forward:<hidden>",
//            issue 3; queue logs may reach the status page).
// Concurrency: own worker threads (std::thread + condition_variable); every
//            public method is thread-safe. Agents may call `done` from any
//            thread, synchronously or later; an outcome reported on a thread
//            that is not one of the workers (the event loop) is settled by a
//            worker, so no spool write blocks the agent's thread. stop()
//            waits for in-flight deliveries to call `done`.
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
#include "base/result.hpp"
#include "config/config.hpp"
#include "queue/delivery_agent.hpp"
#include "queue/spool.hpp"

namespace hikyaku::queue {

// Issue 3 plugs forward fallback chains in here: given a slot whose current
// target failed for good (5xx, or 4xx past its defer limit), return the next
// link, or nullopt to fail the slot. The scheduler writes the replacement as
// one durable record (link + 1, attempts 0, the diversion note) before
// attempting it — except a local mailbox link, whose attempt follows at once
// and whose outcome is recorded instead (see Rules above). The message-aware
// hooks below default to the simple ones; policy::ForwardFallback overrides
// them. Hooks run on scheduler threads without the scheduler's lock;
// diverted()/failed() run after the new state is recorded (or, for a
// mailbox link, decided) and while the spool file still exists.
class FallbackPolicy {
 public:
  struct Diversion {
    config::Target target;  // the next link
    std::string note;       // X-Hikyaku-Diverted value for the diverted copy
  };
  virtual ~FallbackPolicy() = default;
  virtual std::optional<config::Target> next(const TargetState& slot, const DeliveryOutcome& outcome) = 0;
  // Whether a temporary failure should already divert (defer_limit). Default:
  // only after config.delivery.expire.
  virtual bool divert_on_temporary(const TargetState& /*slot*/, base::Clock::time_point /*now*/) {
    return false;
  }

  virtual std::optional<Diversion> divert(const SpooledMessage& /*message*/, const TargetState& slot,
                                          const DeliveryOutcome& outcome, base::Clock::time_point /*now*/) {
    auto link = next(slot, outcome);
    if (!link) return std::nullopt;
    return Diversion{*link, {}};
  }
  virtual bool should_divert(const SpooledMessage& /*message*/, const TargetState& slot,
                             base::Clock::time_point now) {
    return divert_on_temporary(slot, now);
  }
  // A time the next retry must not pass (the defer_limit deadline), so the
  // diversion happens at the deadline and not up to one retry interval later.
  // Also handed to the agent (DeliveryRequest::deadline). Called with the
  // scheduler's lock held: it must not call back into the scheduler.
  virtual std::optional<base::Clock::time_point> deadline(const SpooledMessage& /*message*/,
                                                          const TargetState& /*slot*/) {
    return std::nullopt;
  }
  // The slot moved from `from` to the link in `to` (notices).
  virtual void diverted(const SpooledMessage& /*message*/, const TargetState& /*from*/,
                        const TargetState& /*to*/, const DeliveryOutcome& /*outcome*/) {}
  // The slot failed for good (DSNs).
  virtual void failed(const SpooledMessage& /*message*/, const TargetState& /*slot*/,
                      const DeliveryOutcome& /*outcome*/) {}
  // How a target is named in queue logs: hidden forwards as "forward:<hidden>".
  virtual std::string describe(const config::Target& target) { return target.str(); }
  // Remote reply text as it may be logged (hidden addresses removed).
  virtual std::string redact(std::string text) { return text; }
};

struct SchedulerOptions {
  unsigned workers = 4;          // threads calling agents
  unsigned max_in_flight = 256;  // deliveries handed to agents and not yet done
  double jitter = 0.10;          // retry intervals are stretched by [0, jitter)
};

class Scheduler {
 public:
  Scheduler(Spool& spool, const config::Config& config, base::Clock& clock,
            SchedulerOptions options = {});
  ~Scheduler();  // stop()
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Before start(). The agent must outlive the scheduler.
  void register_agent(config::Target::Kind kind, DeliveryAgent& agent);
  void set_fallback_policy(FallbackPolicy& policy);

  // Recover the spool (Spool::recover), load every queued message, start the
  // workers. Call it before accepting mail: recovery deletes spool/tmp/*. Unfinished targets are attempted now, or at their recorded
  // next-attempt time.
  base::Status start();
  // A message just enqueued: attempt it now (loads it from the spool).
  void submit(const std::string& queue_id);
  // Who calls submit_staged(): a thread that may block, or the event loop.
  enum class Caller { worker, event_loop };
  // A message the caller has staged (Spool::stage) and not yet committed,
  // with its bytes, so that agents need not read the file. Its forward slots
  // are handed to their agent before this returns, on the caller's thread
  // (the agent's synchronous part runs here: SmtpAgent prepares the message
  // and looks up the route): through deliver() on a worker, through
  // deliver_now() on the event loop, where what the agent declines goes to
  // a worker. Must be followed by committed() or abandoned() for the same id.
  void submit_staged(SpooledMessage message, std::shared_ptr<const std::string> bytes,
                     Caller caller = Caller::worker);
  void committed(const std::string& queue_id);
  void abandoned(const std::string& queue_id);
  // Stop taking new attempts, wait for in-flight ones, join the workers.
  void stop();

  // Every pending target is due now (`hikyaku queue flush`).
  void flush();
  // Re-read the clock (a test moved its fake clock).
  void wake();
  // Forget a message that an operator deleted (`hikyaku queue delete`);
  // an in-flight attempt still completes, its outcome is then discarded.
  void forget(const std::string& queue_id);

  // Messages the scheduler is holding.
  size_t active_messages() const;
  // For tests: wait (real time) until nothing is in flight or due now.
  bool wait_idle(std::chrono::milliseconds timeout);

 private:
  struct Active {
    SpooledMessage message;
    std::vector<bool> in_flight;  // per slot
    unsigned in_flight_count = 0;
    bool forgotten = false;
    bool durable = true;          // false between submit_staged and committed
    bool forwards_wait = false;   // spool rule 6: no forward started before committed()
    std::shared_ptr<const std::string> bytes;  // dropped when nothing is in flight
    std::vector<std::optional<DeliveryOutcome>> held;  // per slot, until durable
    struct Notice {
      TargetState from, to;
      DeliveryOutcome outcome;
    };
    std::vector<Notice> notices;  // diverted() hooks of diversions decided before durable
  };
  struct Task {
    std::string id;
    size_t slot;
  };
  struct Settle {
    std::string id;
    size_t slot;
    DeliveryOutcome outcome;
  };

  void worker();
  std::optional<DeliveryRequest> begin_attempt_locked(const Task& task);
  DeliveryAgent* agent_for(config::Target::Kind kind) const;
  void attempt(const Task& task, std::unique_lock<std::mutex>& lock);
  bool attempt_now(const Task& task, std::unique_lock<std::mutex>& lock);
  void on_outcome(const std::string& id, size_t slot, DeliveryOutcome outcome);
  bool on_worker_locked() const;
  void settle(const std::string& id, size_t slot, const DeliveryOutcome& outcome);
  bool settle_next(std::unique_lock<std::mutex>& lock);
  bool diverts_to_mailbox_locked(const Active& a, size_t slot, const DeliveryOutcome& outcome);
  void schedule_locked(const std::string& id, size_t slot, const TargetState& state);
  void move_due_locked(base::Clock::time_point now);
  void wake_workers_locked(size_t new_work);
  base::Clock::time_point retry_time_locked(unsigned attempts, base::Clock::time_point now);
  void add_message(SpooledMessage message, std::shared_ptr<const std::string> bytes = nullptr,
                   bool durable = true, Caller caller = Caller::worker);
  std::string describe(const config::Target& target) const;
  bool idle_locked() const;

  Spool& spool_;
  config::Delivery delivery_;
  base::Clock& clock_;
  SchedulerOptions options_;
  std::map<config::Target::Kind, DeliveryAgent*> agents_;
  FallbackPolicy* fallback_ = nullptr;

  mutable std::mutex mu_;
  std::condition_variable cv_;       // workers: work or stop
  std::condition_variable idle_cv_;  // wait_idle(), stop()
  std::map<std::string, Active> active_;
  std::deque<Task> ready_;
  std::deque<Settle> settle_;        // held outcomes of messages just committed
  std::set<std::tuple<base::Clock::time_point, std::string, size_t>> timers_;
  unsigned in_flight_ = 0;
  bool stopping_ = false;
  bool started_ = false;
  std::mt19937_64 rng_;
  std::vector<std::thread> workers_;
};

}  // namespace hikyaku::queue
