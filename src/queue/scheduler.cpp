#include "queue/scheduler.hpp"

#include <algorithm>

#include "base/log.hpp"

namespace hikyaku::queue {
using namespace std::chrono_literals;
using std::chrono::duration_cast;

namespace {

// The longest real-time sleep between clock checks: an injected clock may
// jump (tests, suspend/resume), so never trust one long wait.
constexpr auto kMaxSleep = 1s;

std::string_view outcome_word(const TargetState& s, bool diverted) {
  if (diverted) return "diverted";
  switch (s.status) {
    case TargetStatus::delivered: return "delivered";
    case TargetStatus::failed: return "failed";
    case TargetStatus::pending: return "deferred";
  }
  return "deferred";
}

}  // namespace

Scheduler::Scheduler(Spool& spool, const config::Config& config, base::Clock& clock,
                     SchedulerOptions options)
    : spool_(spool), delivery_(config.delivery), clock_(clock), options_(options),
      rng_(std::random_device{}()) {
  if (delivery_.retry.empty()) delivery_.retry.push_back(config::Seconds(300));
  if (options_.workers == 0) options_.workers = 1;
  if (options_.max_in_flight == 0) options_.max_in_flight = 1;
}

Scheduler::~Scheduler() { stop(); }

void Scheduler::register_agent(config::Target::Kind kind, DeliveryAgent& agent) {
  std::lock_guard lock(mu_);
  agents_[kind] = &agent;
}

void Scheduler::set_fallback_policy(FallbackPolicy& policy) {
  std::lock_guard lock(mu_);
  fallback_ = &policy;
}

base::Status Scheduler::start() {
  auto ids = spool_.recover();
  if (!ids) return ids.error();
  auto log = base::logger("queue");
  size_t resumed = 0;
  for (const auto& id : *ids) {
    auto m = spool_.load(id);
    if (!m) {
      log->error("{}: cannot load, moved to corrupt/: {}", id, m.error().message);
      (void)spool_.quarantine(id);
      continue;
    }
    if (m->torn_records > 0) log->warn("{}: ignored {} torn journal record(s)", id, m->torn_records);
    if (m->done()) {
      (void)spool_.remove(id);  // every slot final; the earlier unlink was lost
      continue;
    }
    add_message(std::move(*m));
    ++resumed;
  }
  if (resumed > 0) log->info("recovered {} queued message(s)", resumed);

  std::lock_guard lock(mu_);
  stopping_ = false;
  started_ = true;
  for (unsigned i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { worker(); });
  return {};
}

void Scheduler::submit(const std::string& queue_id) {
  auto m = spool_.load(queue_id);
  if (!m) {
    // The message is durable; a restart will find it (or quarantine it).
    base::logger("queue")->error("{}: cannot load for delivery: {}", queue_id, m.error().message);
    return;
  }
  add_message(std::move(*m));
}

void Scheduler::submit_staged(SpooledMessage message, std::shared_ptr<const std::string> bytes, Caller caller) {
  add_message(std::move(message), std::move(bytes), false, caller);
}

void Scheduler::add_message(SpooledMessage message, std::shared_ptr<const std::string> bytes, bool durable,
                            Caller caller) {
  // Spool rule 6 (a statvfs: asked before taking the lock): while commits
  // fail, the forwards of a staged message wait for committed() as well.
  const bool wait_for_commit =
      !durable && spool_.commit_in_doubt(message.message_offset + message.message_size);
  if (wait_for_commit) {
    base::logger("queue")->debug("{}: forwards wait for the commit (the last one failed, or the disk is full)",
                                 message.id);
  }
  std::unique_lock lock(mu_);
  if (active_.count(message.id)) return;  // already held (recovery raced a submit)
  const std::string id = message.id;
  Active& a = active_[id];
  a.in_flight.assign(message.targets.size(), false);
  a.held.resize(message.targets.size());
  a.message = std::move(message);
  a.bytes = std::move(bytes);
  a.durable = durable;
  a.forwards_wait = wait_for_commit;
  const size_t queued = ready_.size();
  if (durable) {
    for (size_t i = 0; i < a.message.targets.size(); ++i) schedule_locked(id, i, a.message.targets[i]);
    wake_workers_locked(ready_.size() - queued);
    return;
  }
  if (a.forwards_wait) return;  // committed() schedules every slot
  // Not yet durable: only the forwards start (they overlap the disk sync;
  // local deliveries wait for committed()), and on the caller's thread:
  // handing them to a worker would put a thread wake-up (0.1-0.2 ms on a
  // VM) on the way to the far side. The event loop may only use the agent's
  // deliver_now(); what it declines goes to a worker after all.
  std::vector<size_t> forwards;
  for (size_t i = 0; i < a.message.targets.size(); ++i) {
    if (a.message.targets[i].target.kind == config::Target::Kind::forward) forwards.push_back(i);
  }
  for (size_t i : forwards) {
    if (started_ && !stopping_ && in_flight_ < options_.max_in_flight) {
      // Both release the lock around the agent call.
      if (caller == Caller::worker) attempt(Task{id, i}, lock);
      else if (!attempt_now(Task{id, i}, lock)) ready_.push_back(Task{id, i});
    } else {
      ready_.push_back(Task{id, i});
    }
  }
  if (ready_.size() > queued) wake_workers_locked(ready_.size() - queued);
}

// As many workers as there is new work (a timer change needs one), not all
// of them: each wake-up of an idle worker costs a context switch and a turn
// on the lock.
void Scheduler::wake_workers_locked(size_t new_work) {
  if (new_work > 1) cv_.notify_all();
  else cv_.notify_one();
}

void Scheduler::committed(const std::string& queue_id) {
  for (;;) {
    // Notices of diversions decided before the commit go out first, now that
    // the file is in queue/ and before a held outcome can finish the message.
    std::vector<Active::Notice> notices;
    const SpooledMessage* message = nullptr;
    {
      std::lock_guard lock(mu_);
      auto it = active_.find(queue_id);
      if (it == active_.end() || it->second.durable) return;
      Active& a = it->second;
      if (a.notices.empty()) {
        a.durable = true;
        const size_t queued = ready_.size() + settle_.size();
        for (size_t i = 0; i < a.message.targets.size(); ++i) {
          if (a.held[i]) {
            settle_.push_back(Settle{queue_id, i, std::move(*a.held[i])});
            a.held[i].reset();
          } else if (a.message.targets[i].link == 0 &&
                     (a.forwards_wait || a.message.targets[i].target.kind != config::Target::Kind::forward)) {
            // Local slots of the plan, held back until now (an early
            // diversion's mailbox link is already scheduled), and the
            // forwards too while commits were failing (spool rule 6).
            schedule_locked(queue_id, i, a.message.targets[i]);
          }
        }
        wake_workers_locked(ready_.size() + settle_.size() - queued);
        idle_cv_.notify_all();
        return;
      }
      notices.swap(a.notices);
      message = &a.message;  // stable: a message not yet durable is never erased here
    }
    for (const auto& n : notices) {
      if (fallback_ != nullptr) fallback_->diverted(*message, n.from, n.to, n.outcome);
    }
  }
}

void Scheduler::abandoned(const std::string& queue_id) {
  std::vector<Settle> held;
  {
    std::lock_guard lock(mu_);
    auto it = active_.find(queue_id);
    if (it == active_.end() || it->second.durable) return;
    Active& a = it->second;
    a.forgotten = true;  // outcomes still in flight are discarded as they come
    a.notices.clear();   // the client retries: it will be diverted (and noticed) again
    for (size_t i = 0; i < a.held.size(); ++i) {
      if (a.held[i]) held.push_back(Settle{queue_id, i, std::move(*a.held[i])});
      a.held[i].reset();
    }
    if (a.in_flight_count == 0) active_.erase(it);
  }
  for (auto& h : held) settle(h.id, h.slot, h.outcome);
}

// A pending slot goes to ready_ when due, else to timers_.
void Scheduler::schedule_locked(const std::string& id, size_t slot, const TargetState& state) {
  if (state.final()) return;
  if (state.next_attempt <= clock_.now()) {
    ready_.push_back(Task{id, slot});
  } else {
    timers_.emplace(state.next_attempt, id, slot);
  }
}

void Scheduler::move_due_locked(base::Clock::time_point now) {
  while (!timers_.empty() && std::get<0>(*timers_.begin()) <= now) {
    auto node = timers_.extract(timers_.begin());
    ready_.push_back(Task{std::get<1>(node.value()), std::get<2>(node.value())});
  }
}

void Scheduler::stop() {
  std::unique_lock lock(mu_);
  if (!started_) return;
  stopping_ = true;
  cv_.notify_all();
  // In-flight deliveries call back into us: wait for them before returning
  // (and settle held outcomes of messages committed meanwhile ourselves).
  while (in_flight_ > 0) {
    if (!settle_next(lock)) idle_cv_.wait(lock);
  }
  std::vector<std::thread> workers;
  workers.swap(workers_);
  started_ = false;
  lock.unlock();
  for (auto& t : workers) t.join();
}

void Scheduler::flush() {
  std::lock_guard lock(mu_);
  for (const auto& [due, id, slot] : timers_) ready_.push_back(Task{id, slot});
  timers_.clear();
  cv_.notify_all();
}

void Scheduler::wake() {
  std::lock_guard lock(mu_);
  cv_.notify_all();
}

void Scheduler::forget(const std::string& queue_id) {
  std::lock_guard lock(mu_);
  auto it = active_.find(queue_id);
  if (it == active_.end()) return;
  if (it->second.in_flight_count > 0) {
    it->second.forgotten = true;  // erased when the last attempt completes
  } else {
    active_.erase(it);
  }
}

size_t Scheduler::active_messages() const {
  std::lock_guard lock(mu_);
  return active_.size();
}

bool Scheduler::idle_locked() const {
  if (in_flight_ > 0 || !ready_.empty() || !settle_.empty()) return false;
  return timers_.empty() || std::get<0>(*timers_.begin()) > clock_.now();
}

bool Scheduler::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.notify_all();  // make workers look at the clock first
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!idle_locked()) {
    if (idle_cv_.wait_until(lock, std::min(deadline, std::chrono::steady_clock::now() + 10ms)) ==
            std::cv_status::timeout &&
        std::chrono::steady_clock::now() >= deadline) {
      return idle_locked();
    }
  }
  return true;
}

// Settle the oldest held outcome of a committed message, if any. Called with
// `lock` held; releases it around the settling.
bool Scheduler::settle_next(std::unique_lock<std::mutex>& lock) {
  if (settle_.empty()) return false;
  Settle next = std::move(settle_.front());
  settle_.pop_front();
  lock.unlock();
  settle(next.id, next.slot, next.outcome);
  lock.lock();
  return true;
}

void Scheduler::worker() {
  std::unique_lock lock(mu_);
  // Held outcomes are settled even while stopping: stop() waits for them.
  while (!stopping_ || !settle_.empty()) {
    if (settle_next(lock)) continue;
    const auto now = clock_.now();
    move_due_locked(now);
    if (!ready_.empty() && in_flight_ < options_.max_in_flight) {
      Task task = std::move(ready_.front());
      ready_.pop_front();
      attempt(task, lock);
      continue;
    }
    idle_cv_.notify_all();
    // Sleep until the next timer (measured on the injected clock), a
    // submit/outcome/wake notification, or kMaxSleep.
    auto sleep = std::chrono::steady_clock::duration(kMaxSleep);
    if (!timers_.empty()) {
      auto until_due = std::get<0>(*timers_.begin()) - now;
      sleep = std::min(sleep, duration_cast<std::chrono::steady_clock::duration>(until_due));
    }
    if (sleep > sleep.zero()) cv_.wait_for(lock, sleep);
  }
}

// Marks the slot in flight and builds its request; nullopt when there is
// nothing to attempt (finished, forgotten, final or already in flight).
std::optional<DeliveryRequest> Scheduler::begin_attempt_locked(const Task& task) {
  auto it = active_.find(task.id);
  if (it == active_.end()) return std::nullopt;  // finished or forgotten
  Active& a = it->second;
  if (a.forgotten || task.slot >= a.message.targets.size() || a.in_flight[task.slot]) return std::nullopt;
  const TargetState& state = a.message.targets[task.slot];
  if (state.final()) return std::nullopt;

  DeliveryRequest request;
  request.queue_id = task.id;
  request.envelope = &a.message.envelope;  // stable: Active lives until its attempts finish
  request.message_path = a.message.path;
  request.message_offset = a.message.message_offset;
  request.message_size = a.message.message_size;
  request.message = a.bytes;
  request.recipient = state.recipient;
  request.target = state.target;
  request.diverted = state.diverted;
  request.origin = a.message.origin;
  // The first attempt starts the defer_limit clock now, not when its
  // outcome arrives (an attempt may wait long for a slowed-down far side).
  TargetState& live = a.message.targets[task.slot];
  if (live.first_attempt == base::Clock::time_point{}) live.first_attempt = clock_.now();
  if (fallback_ != nullptr) {
    if (auto deadline = fallback_->deadline(a.message, live)) request.deadline = *deadline;
  }
  a.in_flight[task.slot] = true;
  ++a.in_flight_count;
  ++in_flight_;
  return request;
}

DeliveryAgent* Scheduler::agent_for(config::Target::Kind kind) const {
  auto it = agents_.find(kind);
  return it == agents_.end() ? nullptr : it->second;
}

// Hand one slot to its agent. Called with `lock` held; releases it around
// the agent call.
void Scheduler::attempt(const Task& task, std::unique_lock<std::mutex>& lock) {
  auto request = begin_attempt_locked(task);
  if (!request) return;
  DeliveryAgent* agent = agent_for(request->target.kind);
  lock.unlock();
  if (agent == nullptr) {
    on_outcome(task.id, task.slot,
               DeliveryOutcome{DeliveryOutcome::Kind::temporary, "4.3.0",
                               "no delivery agent for " + describe(request->target)});
  } else {
    std::string id = task.id;
    size_t slot = task.slot;
    agent->deliver(*request, [this, id, slot](DeliveryOutcome outcome) { on_outcome(id, slot, std::move(outcome)); });
  }
  lock.lock();
}

// attempt() through deliver_now(): false when the agent declined (the slot
// is as before, for a worker to attempt) or there was nothing to attempt.
bool Scheduler::attempt_now(const Task& task, std::unique_lock<std::mutex>& lock) {
  auto request = begin_attempt_locked(task);
  if (!request) return true;  // nothing to do: not the caller's to queue either
  DeliveryAgent* agent = agent_for(request->target.kind);
  bool went = false;
  if (agent != nullptr) {
    lock.unlock();
    std::string id = task.id;
    size_t slot = task.slot;
    went = agent->deliver_now(*request,
                              [this, id, slot](DeliveryOutcome outcome) { on_outcome(id, slot, std::move(outcome)); });
    lock.lock();
  }
  if (went) return true;
  // Declined: undo begin_attempt_locked() (first_attempt may stay: the
  // worker's attempt follows at once). The message cannot have finished
  // meanwhile: this slot counted in flight.
  Active& a = active_.at(task.id);
  a.in_flight[task.slot] = false;
  --a.in_flight_count;
  --in_flight_;
  return false;
}

base::Clock::time_point Scheduler::retry_time_locked(unsigned attempts, base::Clock::time_point now) {
  // config.delivery.retry[k-1] after the k-th failed attempt, then the last
  // interval forever; jitter spreads a burst of deferrals (RFC 5321 §4.5.4.1).
  size_t k = std::min<size_t>(attempts == 0 ? 0 : attempts - 1, delivery_.retry.size() - 1);
  auto interval = duration_cast<base::Clock::time_point::duration>(delivery_.retry[k]);
  std::uniform_real_distribution<double> dist(0.0, options_.jitter);
  auto extra = duration_cast<base::Clock::time_point::duration>(interval * dist(rng_));
  return now + interval + extra;
}

std::string Scheduler::describe(const config::Target& target) const {
  return fallback_ != nullptr ? fallback_->describe(target) : target.str();
}

// An agent's outcome: acted on now, or held until the message is durable.
void Scheduler::on_outcome(const std::string& id, size_t slot, DeliveryOutcome outcome) {
  std::unique_lock lock(mu_);
  auto it = active_.find(id);
  HIKYAKU_CHECK(it != active_.end());
  Active& a = it->second;
  if (!a.durable && !a.forgotten && !diverts_to_mailbox_locked(a, slot, outcome)) {
    a.held[slot] = std::move(outcome);  // still in flight for everyone else
    return;
  }
  if (on_worker_locked()) {
    lock.unlock();
    settle(id, slot, outcome);
    return;
  }
  // Settling writes the spool (fdatasync) and may queue a notice: not on
  // an agent's thread (the SMTP client completes on the event loop).
  settle_.push_back(Settle{id, slot, std::move(outcome)});
  lock.unlock();
  cv_.notify_one();  // after unlocking: the woken worker does not wait for our lock
}

bool Scheduler::on_worker_locked() const {
  const auto self = std::this_thread::get_id();
  return std::any_of(workers_.begin(), workers_.end(), [&](const std::thread& t) { return t.get_id() == self; });
}

// A refusal whose next link is a local mailbox needs no spool record (the
// lazy diversion rule), so it is acted on before the commit: the fallback
// copy is written while the spool syncs. Its outcome is held as usual.
bool Scheduler::diverts_to_mailbox_locked(const Active& a, size_t slot, const DeliveryOutcome& outcome) {
  if (fallback_ == nullptr || outcome.kind != DeliveryOutcome::Kind::permanent) return false;
  TargetState next = a.message.targets[slot];
  ++next.attempts;
  next.last_reply = outcome.status + " " + outcome.detail;
  auto link = fallback_->divert(a.message, next, outcome, clock_.now());
  return link && link->target.kind == config::Target::Kind::mailbox;
}

void Scheduler::settle(const std::string& id, size_t slot, const DeliveryOutcome& outcome) {
  auto log = base::logger("queue");
  const auto now = clock_.now();

  // 1. The new state, computed from the current one.
  std::unique_lock lock(mu_);
  auto it = active_.find(id);
  HIKYAKU_CHECK(it != active_.end());
  Active& a = it->second;
  TargetState next = a.message.targets[slot];
  const TargetState before = next;
  ++next.attempts;
  if (next.first_attempt == base::Clock::time_point{}) next.first_attempt = now;
  next.last_reply = outcome.status + " " + outcome.detail;
  bool diverted = false;
  switch (outcome.kind) {
    case DeliveryOutcome::Kind::delivered:
      next.status = TargetStatus::delivered;
      break;
    case DeliveryOutcome::Kind::permanent:
    case DeliveryOutcome::Kind::temporary: {
      const bool temporary = outcome.kind == DeliveryOutcome::Kind::temporary;
      const bool expired = now - a.message.arrival >= delivery_.expire;
      bool give_up = !temporary || expired ||
                     (fallback_ != nullptr && fallback_->should_divert(a.message, next, now));
      if (!give_up) {
        next.status = TargetStatus::pending;
        next.next_attempt = retry_time_locked(next.attempts, now);
        if (fallback_ != nullptr) {
          // defer_limit: the last retry happens at the deadline, so the
          // slot diverts then, not up to one retry interval later.
          if (auto deadline = fallback_->deadline(a.message, next); deadline && *deadline < next.next_attempt)
            next.next_attempt = std::max(*deadline, now);
        }
        break;
      }
      // Fallback rule (issue 3): a slot that failed for good moves to the
      // next link of its chain, with a fresh attempt count, due now; with no
      // further link it fails (the policy's failed() hook sends the DSN).
      std::optional<FallbackPolicy::Diversion> link;
      if (fallback_ != nullptr) link = fallback_->divert(a.message, next, outcome, now);
      if (link) {
        diverted = true;
        next.target = link->target;
        next.diverted = link->note;
        ++next.link;
        next.status = TargetStatus::pending;
        next.attempts = 0;
        next.first_attempt = {};
        next.next_attempt = {};
      } else {
        next.status = TargetStatus::failed;
        if (temporary && expired) next.last_reply += " (expired)";
      }
      break;
    }
  }
  // Stable while this attempt is in flight (Active is erased only when
  // in_flight_count drops to 0); record() reads only its path and slot count.
  const SpooledMessage* message = &a.message;
  const bool forgotten = a.forgotten;
  const bool durable = a.durable;  // false: an early diversion (diverts_to_mailbox_locked)
  // The last slot turning final makes the message done: its unlink is the
  // record (rule 5 in spool.hpp), so the append + fdatasync is skipped. A
  // crash before the unlink repeats that delivery: a duplicate, the same
  // trade-off as a crash between the agent's success and the record.
  bool last_final = next.final() && a.in_flight_count == 1;
  for (size_t i = 0; last_final && i < a.message.targets.size(); ++i) {
    if (i != slot && !a.message.targets[i].final()) last_final = false;
  }
  const std::string recipient = before.recipient;
  const auto arrival = a.message.arrival;
  lock.unlock();

  // 2. Durable before acted on. Except a diversion to a local mailbox: that
  // attempt follows at once and its outcome (record or unlink) carries the
  // whole slot state; a crash in between repeats the refused attempt.
  const bool lazy = diverted && next.target.kind == config::Target::Kind::mailbox;
  if (!forgotten && !last_final && !lazy) {
    if (auto st = spool_.record(*message, slot, next); !st) {
      // XXX(queue): acting anyway. A lost "delivered" record repeats the
      // delivery after a restart (duplicate); a lost deferral only changes
      // the retry time. Refusing to act would stall the queue on a full disk.
      log->error("{}: cannot record state of {}: {}", id, describe(before.target), st.error().message);
    }
  }

  // 3. Log one line per attempt; hidden forwards are named only by kind
  // (the policy's describe()): queue logs may end up on the status page.
  const double delay = std::chrono::duration<double>(now - arrival).count();
  log->info("{}: to=<{}>, target={}, status={} ({}), attempts={}, delay={:.2f}s", id, recipient,
            describe(before.target), outcome_word(next, diverted),
            fallback_ != nullptr ? fallback_->redact(next.last_reply) : next.last_reply, before.attempts + 1,
            delay);

  // 3b. Issue 3 hooks (notice on diversion, DSN on final failure), after the
  // state is durable and before the file can be removed. A crash between
  // the record and the hook loses that notice/DSN, never the message.
  // Before the commit the notice cannot read the file yet: committed()
  // sends it (step 4 queues it).
  if (fallback_ != nullptr && !forgotten && durable) {
    if (diverted) fallback_->diverted(*message, before, next, outcome);
    else if (next.status == TargetStatus::failed) fallback_->failed(*message, next, outcome);
  }

  // 4. Act: update memory, reschedule, or finish the message.
  bool remove_file = false;
  lock.lock();
  it = active_.find(id);
  HIKYAKU_CHECK(it != active_.end());
  Active& b = it->second;
  std::optional<SpooledMessage> late_notice;  // a copy: b may be gone once unlocked
  if (diverted && !durable && !b.forgotten && fallback_ != nullptr) {
    if (b.durable) late_notice = b.message;  // committed() ran meanwhile: send it here
    else b.notices.push_back(Active::Notice{before, next, outcome});
  }
  b.message.targets[slot] = next;
  b.in_flight[slot] = false;
  --b.in_flight_count;
  if (b.in_flight_count == 0 && (next.final() || next.next_attempt > now)) b.bytes.reset();
  if (b.forgotten) {
    if (b.in_flight_count == 0) active_.erase(it);
  } else if (!next.final()) {
    schedule_locked(id, slot, next);
  } else if (b.message.done() && b.in_flight_count == 0) {
    active_.erase(it);
    remove_file = true;
  }
  lock.unlock();
  if (late_notice) fallback_->diverted(*late_notice, before, next, outcome);
  if (remove_file) {
    if (auto st = spool_.remove(id); !st) log->error("{}: cannot remove: {}", id, st.error().message);
    else log->info("{}: removed", id);
  }
  // Counted in flight until the file is gone, so stop() and wait_idle() see
  // a settled spool.
  lock.lock();
  --in_flight_;
  // A free in-flight place, maybe a rescheduled slot (a diversion's mailbox
  // attempt): a worker settling here takes the next task itself when it is
  // back in its loop, so another is woken only for more work than that (a
  // wake-up in series would delay the fallback copy by 0.1-0.2 ms).
  if (!on_worker_locked() || ready_.size() + settle_.size() > 1) wake_workers_locked(1);
  idle_cv_.notify_all();
}

}  // namespace hikyaku::queue
