#include "queue/scheduler.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "base/log.hpp"
#include "base/strings.hpp"
#include "mail/header.hpp"

namespace hikyaku::queue {
using namespace std::chrono_literals;
using std::chrono::duration_cast;
using policy::AttemptResult;
using policy::Disposition;

namespace {

// The longest real-time sleep between clock checks: an injected clock may
// jump (tests, suspend/resume), so never trust one long wait.
constexpr auto kMaxSleep = 1s;
// finished_before_commit() waits at most this long for a fallback copy (a
// local write; a disk this slow makes the commit wait as long anyway).
constexpr auto kFallbackCopyWait = 2s;

}  // namespace

Scheduler::Scheduler(Spool& spool, const base::Live<policy::Rules>& rules, base::Clock& clock, SchedulerOptions options)
    : spool_(spool), rules_(rules), clock_(clock), options_(options),
      rng_(std::random_device{}()) {
  if (options_.threads == 0) options_.threads = 1;
  if (options_.max_in_flight == 0) options_.max_in_flight = 1;
}

// Only std::mutex can throw in stop(); a failing mutex is a bug, and terminating is right.
Scheduler::~Scheduler() { stop(); }  // NOLINT(bugprone-exception-escape)

void Scheduler::register_agent(mail::Target::Kind kind, DeliveryAgent& agent) {
  std::lock_guard lock(mu_);
  agents_[kind] = &agent;
}

base::Status Scheduler::start() {
  auto ids = spool_.recover();
  if (!ids) return ids.error();
  auto log = base::logger("queue");
  size_t resumed = 0;
  std::vector<std::string> forgotten;  // messages with a slot for a forward no longer configured
  const auto rules = rules_.get();
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
    if (m->origin == policy::Origin::received &&
        std::any_of(m->slots.begin(), m->slots.end(), [&](const SlotState& slot) {
          return !slot.final() && rules->delivery().forgotten_forward(slot);
        }))
      forgotten.push_back(id);
    add_message(std::move(*m));
    ++resumed;
  }
  if (resumed > 0) log->info("recovered {} queued message(s)", resumed);
  if (!forgotten.empty()) {
    // The address is not named: it may have been a hidden one (whose
    // DATA_DIR/state/known-forwards was lost; a removed hidden forward is
    // otherwise still known: config/known_forwards.hpp).
    log->warn("{} queued message(s) (first {}) wait for a forward the configuration no longer has: they are "
              "handled as an ordinary forward's, without fallback, and a final refusal bounces to the sender "
              "with the far side's reply. Put its [[forward]] back (with its fallback) until "
              "`hikyaku queue list` shows none",
              forgotten.size(), forgotten.front());
  }

  std::lock_guard lock(mu_);
  stopping_ = false;
  started_ = true;
  for (unsigned i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { run(); });
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

void Scheduler::submit_staged(SpooledMessage message, std::shared_ptr<const mail::Message> bytes) {
  // Rule: while commits are in doubt nothing starts before the commit (one
  // statvfs, outside the lock).
  const bool wait = spool_.commit_in_doubt(message.message_offset + message.message_size);
  if (wait) {
    base::logger("queue")->debug("{}: forwards wait for the commit (the last one failed, or the disk is full)",
                                 message.id);
  }
  add_message(std::move(message), std::move(bytes), false, wait);
}

void Scheduler::add_message(SpooledMessage message, std::shared_ptr<const mail::Message> bytes, bool durable,
                            bool wait_for_commit) {
  std::unique_lock lock(mu_);
  if (active_.count(message.id)) return;  // already held (recovery raced a submit)
  const std::string id = message.id;
  Active& a = active_[id];
  a.in_flight.assign(message.slots.size(), false);
  a.queued.assign(message.slots.size(), false);
  a.held.resize(message.slots.size());
  a.diverting.assign(message.slots.size(), false);
  a.message = std::move(message);
  a.bytes = std::move(bytes);
  a.durable = durable;
  const size_t queued = ready_.size();
  if (durable) {
    for (size_t i = 0; i < a.message.slots.size(); ++i) schedule_locked(a, id, i);
    wake_threads_locked(ready_.size() - queued);
    return;
  }
  // Not yet durable: only the forwards start (they overlap the disk sync;
  // local deliveries wait for committed()), on the caller's thread: handing
  // them to a queue thread would put a thread wake-up (0.1-0.2 ms on a VM)
  // on the way to the far side. Forward agents never block (delivery_agent.hpp).
  // While commits fail, nothing starts before the commit (Rules).
  if (wait_for_commit) return;
  std::vector<size_t> forwards;
  for (size_t i = 0; i < a.message.slots.size(); ++i) {
    if (a.message.slots[i].target.remote()) forwards.push_back(i);
  }
  for (size_t i : forwards) {
    // Looked up again: attempt() releases the lock, and an answer may
    // finish the message meanwhile.
    auto it = active_.find(id);
    if (it == active_.end()) break;
    if (started_ && !stopping_ && remote_in_flight_ < options_.max_in_flight) {
      it->second.queued[i] = true;
      attempt(Task{id, i}, lock);  // releases the lock around the agent call
    } else {
      push_ready_locked(it->second, id, i);
    }
  }
  if (ready_.size() > queued) wake_threads_locked(ready_.size() - queued);
}

// As many threads as there is new work (a timer change needs one), not all
// of them: each wake-up of an idle thread costs a context switch and a turn
// on the lock.
void Scheduler::wake_threads_locked(size_t new_work) {
  if (new_work > 1) cv_.notify_all();
  else cv_.notify_one();
}

bool Scheduler::finished_before_commit(const std::string& queue_id) {
  std::unique_lock lock(mu_);
  auto copying = [](const Active& a) {
    return std::any_of(a.diverting.begin(), a.diverting.end(), [](bool b) { return b; });
  };
  const auto deadline = std::chrono::steady_clock::now() + kFallbackCopyWait;
  auto it = active_.find(queue_id);
  while (it != active_.end() && !stopping_ && copying(it->second)) {
    if (copy_cv_.wait_until(lock, deadline) == std::cv_status::timeout) break;
    it = active_.find(queue_id);
  }
  if (it == active_.end() || it->second.durable || it->second.forgotten) return false;
  const auto& held = it->second.held;
  return std::all_of(held.begin(), held.end(), [](const std::optional<AttemptResult>& r) {
    return r && r->kind == AttemptResult::Kind::delivered;  // a final disposition (DeliveryPolicy::decide)
  });
}

void Scheduler::committed(const std::string& queue_id, Committed how) {
  if (options_.metrics != nullptr) options_.metrics->message_received();
  std::vector<policy::NoticeFacts> notices;
  std::optional<Quote> quoted;
  {
    std::lock_guard lock(mu_);
    auto it = active_.find(queue_id);
    if (it == active_.end() || it->second.durable) return;
    Active& a = it->second;
    a.durable = true;
    a.queue_file = how == Committed::queued;
    a.diverting.assign(a.diverting.size(), false);
    if (options_.history != nullptr) options_.history->record(received_row(a.message, a.bytes, rules_.get()->delivery()));
    notices.swap(a.notices);
    if (!notices.empty()) quoted = Quote{a.message, a.bytes};
    const size_t queued = ready_.size() + settle_.size();
    for (size_t i = 0; i < a.message.slots.size(); ++i) {
      if (a.held[i]) {
        settle_.push_back(Settle{queue_id, i, std::move(*a.held[i])});
        a.held[i].reset();
      } else if (!a.in_flight[i] && !a.queued[i] && a.message.slots[i].link == 0 && !a.message.slots[i].final() &&
                 a.message.slots[i].attempts == 0 && a.message.slots[i].first_attempt == base::Clock::time_point{}) {
        // Slots held back until now: the local ones, and forwards that did
        // not start (commits were failing). An early diversion's mailbox
        // link is already scheduled (its link is not 0).
        schedule_locked(a, queue_id, i);
      }
    }
    wake_threads_locked(ready_.size() + settle_.size() - queued);
    idle_cv_.notify_all();
  }
  // Notices of diversions decided before the commit go out now that the
  // message is durable (a failed commit would have repeated them).
  if (notices.empty()) return;
  const policy::OriginalMessage about = original(quoted->message, quoted->bytes);
  const auto rules = rules_.get();
  for (const auto& n : notices) enqueue_report(queue_id, rules->reports().notice(about, n));
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
  for (auto& h : held) settle(h.id, h.slot, h.result);
}

// A pending slot goes to ready_ when due, else to timers_.
void Scheduler::schedule_locked(Active& a, const std::string& id, size_t slot) {
  const SlotState& state = a.message.slots[slot];
  if (state.final()) return;
  if (state.next_attempt <= clock_.now()) {
    push_ready_locked(a, id, slot);
  } else {
    timers_.emplace(state.next_attempt, id, slot);
  }
}

void Scheduler::move_due_locked(base::Clock::time_point now) {
  while (!timers_.empty() && std::get<0>(*timers_.begin()) <= now) {
    auto node = timers_.extract(timers_.begin());
    make_ready_locked(std::get<1>(node.value()), std::get<2>(node.value()));
  }
}

// A slot whose time has come (nothing to do if its message is gone).
void Scheduler::make_ready_locked(const std::string& id, size_t slot) {
  if (auto it = active_.find(id); it != active_.end() && slot < it->second.message.slots.size())
    push_ready_locked(it->second, id, slot);
}

// Into the line of its current target, marked as queued.
void Scheduler::push_ready_locked(Active& a, const std::string& id, size_t slot) {
  a.queued[slot] = true;
  (a.message.slots[slot].target.remote() ? ready_.remote : ready_.local).push_back(Task{id, slot});
}

void Scheduler::halt() {
  std::lock_guard lock(mu_);
  stopping_ = true;
  cv_.notify_all();
  copy_cv_.notify_all();  // a commit waiting for a fallback copy that will not start
}

void Scheduler::stop() {
  std::unique_lock lock(mu_);
  if (!started_) return;
  stopping_ = true;
  cv_.notify_all();
  copy_cv_.notify_all();
  // In-flight deliveries call back into us: wait for them before returning
  // (and settle queued outcomes ourselves meanwhile).
  while (in_flight_ > 0) {
    if (!settle_next(lock)) idle_cv_.wait(lock);
  }
  std::vector<std::thread> threads;
  threads.swap(threads_);
  started_ = false;
  lock.unlock();
  for (auto& t : threads) t.join();
}

size_t Scheduler::flush(const FlushFilter& filter) {
  std::lock_guard lock(mu_);
  size_t made_due = 0;
  for (auto it = timers_.begin(); it != timers_.end();) {
    const auto& [due, id, slot] = *it;
    auto a = active_.find(id);
    if (a == active_.end() || slot >= a->second.message.slots.size() ||
        !filter.matches(id, a->second.message.slots[slot])) {
      ++it;
      continue;
    }
    push_ready_locked(a->second, id, slot);
    it = timers_.erase(it);
    ++made_due;
  }
  cv_.notify_all();
  return made_due;
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

std::set<std::string, std::less<>> Scheduler::forwards_in_use() const {
  std::set<std::string, std::less<>> out;
  std::lock_guard lock(mu_);
  for (const auto& [id, active] : active_) {
    for (const auto& slot : active.message.slots) {
      if (slot.final()) continue;
      for (const auto* t : {&slot.planned, &slot.target})
        if (t->kind == mail::Target::Kind::forward) out.insert(base::to_lower(t->value));
    }
  }
  return out;
}

bool Scheduler::idle_locked() const {
  if (in_flight_ > 0 || !ready_.empty() || !settle_.empty()) return false;
  return timers_.empty() || std::get<0>(*timers_.begin()) > clock_.now();
}

bool Scheduler::wait_idle(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  cv_.notify_all();  // make the threads look at the clock first
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

// Settle the oldest queued outcome, if any. Called with `lock` held;
// releases it around the settling.
bool Scheduler::settle_next(std::unique_lock<std::mutex>& lock) {
  if (settle_.empty()) return false;
  Settle next = std::move(settle_.front());
  settle_.pop_front();
  lock.unlock();
  settle(next.id, next.slot, next.result, std::move(next.rules));
  lock.lock();
  return true;
}

void Scheduler::run() {
  std::unique_lock lock(mu_);
  // Queued outcomes are settled even while stopping: stop() waits for them.
  while (!stopping_ || !settle_.empty()) {
    if (settle_next(lock)) continue;
    if (stopping_) break;  // another thread took the last outcome: nothing new starts
    const auto now = clock_.now();
    move_due_locked(now);
    // A remote slot when there is room for one, else a local one.
    auto& line = !ready_.remote.empty() && remote_in_flight_ < options_.max_in_flight ? ready_.remote : ready_.local;
    if (!line.empty()) {
      Task task = std::move(line.front());
      line.pop_front();
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

policy::MessageFacts Scheduler::facts(const SpooledMessage& message) const {
  return policy::MessageFacts{message.origin, !message.envelope.sender.has_value(), message.arrival};
}

// Marks the slot in flight and builds its request; nullopt when there is
// nothing to attempt (finished, forgotten, final, already in flight, or a
// stale duplicate: the slot was queued twice and the other task took it).
std::optional<DeliveryRequest> Scheduler::begin_attempt_locked(const Task& task) {
  auto it = active_.find(task.id);
  if (it == active_.end()) return std::nullopt;  // finished or forgotten
  Active& a = it->second;
  if (task.slot >= a.message.slots.size() || !a.queued[task.slot]) return std::nullopt;
  a.queued[task.slot] = false;
  if (a.forgotten || a.in_flight[task.slot]) return std::nullopt;
  SlotState& live = a.message.slots[task.slot];
  if (live.final()) return std::nullopt;

  DeliveryRequest request;
  request.queue_id = task.id;
  request.envelope = &a.message.envelope;  // stable: Active lives until its attempts finish
  request.message_path = a.message.path;
  request.message_offset = a.message.message_offset;
  request.message_size = a.message.message_size;
  request.message = a.bytes;
  request.recipient = live.recipient;
  request.target = live.target;
  request.diverted = live.diverted;
  request.origin = a.message.origin;
  request.attempts = live.attempts;
  // The first attempt starts the defer_limit clock now, not when its
  // outcome arrives (an attempt may wait long for a slowed-down far side).
  if (live.first_attempt == base::Clock::time_point{}) live.first_attempt = clock_.now();
  const auto rules = rules_.get();
  if (auto deadline = rules->delivery().deadline(facts(a.message), live)) request.deadline = *deadline;
  request.srs_identity = rules->delivery().srs_identity(live);
  a.in_flight[task.slot] = true;
  ++a.in_flight_count;
  ++in_flight_;
  if (live.target.remote()) ++remote_in_flight_;
  return request;
}

DeliveryAgent* Scheduler::agent_for(mail::Target::Kind kind) const {
  auto it = agents_.find(kind);
  return it == agents_.end() ? nullptr : it->second;
}

// Hand one slot to its agent. Called with `lock` held; releases it around
// the agent call.
void Scheduler::attempt(const Task& task, std::unique_lock<std::mutex>& lock) {
  auto request = begin_attempt_locked(task);
  if (!request) return;
  DeliveryAgent* agent = agent_for(request->target.kind);
  const bool durable = active_.at(task.id).durable;
  lock.unlock();
  std::string id = task.id;
  size_t slot = task.slot;
  if (durable && ::access(request->message_path.c_str(), F_OK) != 0 && errno == ENOENT) {
    // `hikyaku queue delete` (or an operator's rm) took the file away: the
    // message is forgotten at its next attempt, with no DSN and nothing
    // recorded (admin/commands.cpp says so).
    base::logger("queue")->info("{}: no longer in the queue (deleted): forgotten", id);
    lock.lock();
    active_.at(id).forgotten = true;
    lock.unlock();
    on_result(id, slot, AttemptResult{AttemptResult::Kind::temporary, "4.3.0", "deleted from the queue",
                                      AttemptResult::Cause::local});
  } else if (agent == nullptr) {
    on_result(id, slot,
              AttemptResult{AttemptResult::Kind::temporary, "4.3.0",
                            "no delivery agent for " + rules_.get()->delivery().describe(request->target), AttemptResult::Cause::local});
  } else {
    // The attempt's duration, from hand-over to result (real time: the
    // injected clock may be a test's fake); a paused destination's answer
    // made no connection and is not timed.
    const bool forward = request->target.kind == mail::Target::Kind::forward;
    const auto started = std::chrono::steady_clock::now();
    agent->deliver(*request, [this, id, slot, forward, started](AttemptResult result) {
      if (result.cause != AttemptResult::Cause::rate_limited) {
        result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        if (forward && options_.metrics != nullptr) options_.metrics->forward_duration(result.seconds);
      }
      on_result(id, slot, std::move(result));
    });
  }
  lock.lock();
}

// An agent's result: acted on now, or held until the message is durable.
void Scheduler::on_result(const std::string& id, size_t slot, AttemptResult result) {
  auto rules = rules_.get();  // one generation for the early decision and its settlement
  std::unique_lock lock(mu_);
  auto it = active_.find(id);
  HIKYAKU_CHECK(it != active_.end());
  Active& a = it->second;
  if (!a.durable && !a.forgotten) {
    if (!diverts_to_mailbox_locked(a, slot, result, *rules)) {
      a.held[slot] = std::move(result);  // still in flight for everyone else
      if (a.diverting[slot]) {           // the fallback copy's outcome
        a.diverting[slot] = false;
        lock.unlock();
        copy_cv_.notify_all();
      }
      return;
    }
    a.diverting[slot] = true;  // an early diversion: its fallback copy follows
  }
  if (on_queue_thread_locked()) {
    lock.unlock();
    settle(id, slot, result, std::move(rules));
    return;
  }
  // Settling writes the spool (fdatasync) and may enqueue a report: not on
  // an agent's thread (the SMTP client completes on the event loop).
  settle_.push_back(Settle{id, slot, std::move(result), std::move(rules)});
  // Stopping: the queue threads may have left their loop, and stop()
  // settles what comes in while it waits on idle_cv_.
  const bool stopping = stopping_;
  lock.unlock();
  cv_.notify_one();  // after unlocking: the woken thread does not wait for our lock
  if (stopping) idle_cv_.notify_all();
}

bool Scheduler::on_queue_thread_locked() const {
  const auto self = std::this_thread::get_id();
  return std::any_of(threads_.begin(), threads_.end(), [&](const std::thread& t) { return t.get_id() == self; });
}

// A refusal whose next link is a local mailbox needs no spool record (the
// lazy diversion rule), so it is acted on before the commit: the fallback
// copy is written while the spool syncs. decide() is pure: calling it here,
// under the lock, runs no hook.
bool Scheduler::diverts_to_mailbox_locked(const Active& a, size_t slot, const AttemptResult& result,
                                          const policy::Rules& rules) {
  if (result.kind != AttemptResult::Kind::permanent) return false;
  auto d = rules.delivery().decide(facts(a.message), a.message.slots[slot], result, clock_.now());
  return d.action == Disposition::Action::divert && d.next.target.kind == mail::Target::Kind::mailbox;
}

policy::OriginalMessage Scheduler::original(const SpooledMessage& message,
                                            const std::shared_ptr<const mail::Message>& bytes) const {
  policy::OriginalMessage o;
  o.queue_id = message.id;
  o.arrival = message.arrival;
  o.sender = message.envelope.sender;
  if (message.origin == policy::Origin::submitted) o.auth_user = message.envelope.auth_user;
  if (bytes) {
    o.headers = std::string(mail::header_section(bytes->text));
  } else if (auto text = spool_.read_message(message)) {
    o.headers = std::string(mail::header_section(text->text));
  }
  return o;
}

// A notice or DSN, queued as a new message. A report that cannot be built or
// stored is logged and dropped: the original message is never affected.
void Scheduler::enqueue_report(const std::string& about, base::Result<policy::GeneratedMessage> report) {
  auto log = base::logger("queue");
  if (!report) {
    log->warn("{}: report not sent: {}", about, report.error().message);
    return;
  }
  const char* kind = report->origin == policy::Origin::dsn ? "DSN" : "notice";
  auto id = spool_.enqueue(report->envelope, report->plan, report->message, report->origin);
  if (!id) {
    log->error("{}: {} not queued: {}", about, kind, id.error().message);
    return;
  }
  // Every address redacted: a DSN may go to a hidden address (its owner
  // wrote from it), a notice to a hidden forward address.
  const auto rules = rules_.get();
  const policy::DeliveryPolicy& policy = rules->delivery();
  const std::string recipient = policy.redact(report->plan.front().recipient);
  log->info("{}: {} {} queued about <{}>", about, kind, *id, recipient);
  if (options_.history != nullptr) {
    const auto now = clock_.now();
    history::Received row;
    row.time = now;
    row.queue_id = *id;
    row.origin = policy::to_string(report->origin);
    row.client = "about " + about;
    for (const auto& p : report->plan) row.recipients.push_back(policy.redact(p.recipient));
    const std::string_view headers = mail::header_section(report->message);
    row.subject = policy.redact(mail::one_line(mail::header_value(headers, "Subject").value_or(""), 200));
    options_.history->record(std::move(row));
    const std::string to = recipient == "<hidden>" ? recipient : "<" + recipient + ">";
    options_.history->record(history::Note{now, about, "report", fmt::format("{} {} queued to {}", kind, *id, to)});
  }
  submit(*id);
}

namespace {

metrics::Target metrics_target(mail::Target::Kind kind) {
  switch (kind) {
    case mail::Target::Kind::mailbox: return metrics::Target::mailbox;
    case mail::Target::Kind::forward: return metrics::Target::forward;
    case mail::Target::Kind::relay: return metrics::Target::relay;
  }
  return metrics::Target::relay;
}

metrics::Outcome metrics_outcome(Disposition::Action action) {
  switch (action) {
    case Disposition::Action::delivered: return metrics::Outcome::delivered;
    case Disposition::Action::retry: return metrics::Outcome::deferred;
    case Disposition::Action::divert: return metrics::Outcome::diverted;
    case Disposition::Action::fail: return metrics::Outcome::failed;
  }
  return metrics::Outcome::deferred;
}

}  // namespace

// The history's row for a message the queue took: who sent it from where,
// its From and Subject, and (received mail) our Authentication-Results.
history::Received Scheduler::received_row(const SpooledMessage& message,
                                          const std::shared_ptr<const mail::Message>& bytes,
                                          const policy::DeliveryPolicy& policy) const {
  history::Received row;
  row.time = message.arrival;
  row.queue_id = message.id;
  row.origin = policy::to_string(message.origin);
  const mail::Envelope& env = message.envelope;
  // Hidden addresses stay hidden even as a sender (submitted mail of the
  // account a forward goes to) or a recipient.
  row.sender = policy.redact(env.sender_str());
  if (message.origin == policy::Origin::submitted) row.client = "login " + env.auth_user + ", ";
  if (!env.client_ip.empty()) row.client += "ip " + env.client_ip;
  if (!env.helo.empty()) row.client += " helo " + mail::one_line(env.helo, 100);
  for (const auto& r : env.recipients) row.recipients.push_back(policy.redact(r.str()));
  if (bytes) {
    const std::string_view headers = mail::header_section(bytes->text);
    row.from = policy.redact(mail::one_line(mail::header_value(headers, "From").value_or(""), 200));
    row.subject = policy.redact(mail::one_line(mail::header_value(headers, "Subject").value_or(""), 200));
    if (message.origin == policy::Origin::received)
      row.checks = policy.redact(  // smtp.mailfrom may be a hidden address (its owner writing in)
          mail::one_line(mail::header_value(headers, "Authentication-Results").value_or(""), 400));
  }
  return row;
}

void Scheduler::settle(const std::string& id, size_t slot, const AttemptResult& result,
                       std::shared_ptr<const policy::Rules> decided_with) {
  auto log = base::logger("queue");
  const auto now = clock_.now();
  // One generation of the rules for the whole settlement: the one an early
  // decision was made with, if any.
  const auto rules = decided_with ? std::move(decided_with) : rules_.get();
  const policy::DeliveryPolicy& policy = rules->delivery();

  // 1. The disposition, from the current state (the policy's decision).
  std::unique_lock lock(mu_);
  auto it = active_.find(id);
  HIKYAKU_CHECK(it != active_.end());
  Active& a = it->second;
  const SlotState before = a.message.slots[slot];
  const double jitter_sample = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
  const Disposition d = policy.decide(facts(a.message), before, result, now, jitter_sample);
  const SlotState& next = d.next;
  // Stable while this attempt is in flight (Active is erased only when
  // in_flight_count drops to 0); record() reads only its path and slot count.
  const SpooledMessage* message = &a.message;
  const bool forgotten = a.forgotten;
  const bool durable = a.durable;  // false: an early diversion (diverts_to_mailbox_locked)
  const bool queue_file = a.queue_file;  // false: finished before its commit (no file to record in)
  const bool diverted = d.action == Disposition::Action::divert;
  // The last slot turning final makes the message done: its unlink is the
  // record (spool.hpp rule 5), so the append + fdatasync is skipped. A
  // crash before the unlink repeats that delivery: a duplicate, the same
  // trade-off as a crash between the agent's success and the record.
  bool last_final = next.final() && a.in_flight_count == 1;
  for (size_t i = 0; last_final && i < a.message.slots.size(); ++i) {
    if (i != slot && !a.message.slots[i].final()) last_final = false;
  }
  const auto arrival = a.message.arrival;
  // What a notice or DSN quotes is read after the lock is released: a
  // message without its bytes in memory (recovered, submitted, deferred
  // once) is read from its spool file. `message` stays valid (above).
  const bool report = !forgotten && durable && (d.notice || d.dsn);
  std::shared_ptr<const mail::Message> bytes = report ? a.bytes : nullptr;
  lock.unlock();
  std::optional<policy::OriginalMessage> about;
  if (report) about = original(*message, bytes);

  // 2. Durable before acted on. Except a diversion to a local mailbox: that
  // attempt follows at once and its outcome (record or unlink) carries the
  // whole slot state; a crash in between repeats the refused attempt.
  const bool lazy = diverted && next.target.kind == mail::Target::Kind::mailbox;
  bool deleted = false;  // `hikyaku queue delete` took the file while this attempt ran
  if (!forgotten && !last_final && !lazy && queue_file) {
    if (auto st = spool_.record(*message, slot, next); !st && st.error().error_number == ENOENT && durable) {
      deleted = true;
      log->info("{}: no longer in the queue (deleted): forgotten", id);
    } else if (!st) {
      // XXX(queue): acting anyway. A lost "delivered" record repeats the
      // delivery after a restart (duplicate); a lost deferral only changes
      // the retry time. Refusing to act would stall the queue on a full disk.
      log->error("{}: cannot record state of {}: {}", id, policy.describe(before.target), st.error().message);
    }
  }

  // 3. One line per attempt; hidden forwards are named only by kind and
  // replies are redacted: queue logs may reach the status page.
  const double delay = std::chrono::duration<double>(now - arrival).count();
  // Described and redacted once, for the log line and the history's row.
  std::string target = policy.describe(before.target);
  std::string reply = policy.redact(next.last_reply);
  log->info("{}: to=<{}>, target={}, status={} ({}), attempts={}, delay={:.2f}s", id, policy.redact(before.recipient),
            target, d.word(), reply, before.attempts + 1, delay);
  if (!d.remark.empty()) log->warn("{}: {}", id, d.remark);
  if (options_.metrics != nullptr) options_.metrics->delivery(metrics_target(before.target.kind), metrics_outcome(d.action));
  if (options_.history != nullptr) {
    history::Attempt row;
    row.time = now;
    row.queue_id = id;
    row.recipient = policy.redact(before.recipient);  // a notice's may be hidden
    row.target_kind = metrics::kTargets[static_cast<size_t>(metrics_target(before.target.kind))];
    row.target = std::move(target);
    row.result = d.word();
    row.reply = std::move(reply);
    row.seconds = result.seconds;
    row.tls = result.tls;
    if (d.action == Disposition::Action::retry) row.retry = next.next_attempt;
    if (diverted) row.next = policy.describe(next.target);
    options_.history->record(std::move(row));
  }

  // 3b. Reports, after the state is durable and before the file can be
  // removed. A crash between the record and the report loses that notice or
  // DSN, never the message. Before the commit a notice waits (step 4).
  if (about && !deleted) {
    if (d.notice) enqueue_report(id, rules->reports().notice(*about, *d.notice));
    if (d.dsn) enqueue_report(id, rules->reports().dsn(*about, *d.dsn));
  }

  // 4. Act: update memory, reschedule, or finish the message.
  bool remove_file = false;
  lock.lock();
  it = active_.find(id);
  HIKYAKU_CHECK(it != active_.end());
  Active& b = it->second;
  // committed() ran meanwhile: the notice is sent here, quoting the message
  // (read after the lock is released; `b` may be erased below).
  std::optional<Quote> late;
  if (d.notice && !durable && !b.forgotten) {
    if (b.durable) late = Quote{b.message, b.bytes};
    else b.notices.push_back(*d.notice);
  }
  if (deleted) b.forgotten = true;
  b.message.slots[slot] = next;
  b.in_flight[slot] = false;
  --b.in_flight_count;
  if (b.in_flight_count == 0 && (next.final() || next.next_attempt > now)) b.bytes.reset();
  if (b.forgotten) {
    if (b.in_flight_count == 0) active_.erase(it);
  } else if (!next.final()) {
    schedule_locked(b, id, slot);
  } else if (b.message.done() && b.in_flight_count == 0) {
    active_.erase(it);
    remove_file = true;
  }
  lock.unlock();
  if (late) enqueue_report(id, rules->reports().notice(original(late->message, late->bytes), *d.notice));
  if (remove_file && !queue_file) {
    log->info("{}: finished before its queue file was needed", id);
  } else if (remove_file) {
    if (auto st = spool_.remove(id); !st) log->error("{}: cannot remove: {}", id, st.error().message);
    else log->info("{}: removed", id);
  }
  if (remove_file && options_.history != nullptr)
    options_.history->record(history::Note{clock_.now(), id, "removed", ""});
  // Counted in flight until the file is gone, so stop() and wait_idle() see
  // a settled spool.
  lock.lock();
  --in_flight_;
  if (before.target.remote()) --remote_in_flight_;
  // A free in-flight place, maybe a rescheduled slot (a diversion's mailbox
  // attempt): a queue thread settling here takes the next task itself when
  // it is back in its loop, so another is woken only for more work than
  // that (a wake-up in series would delay the fallback copy by 0.1-0.2 ms).
  if (!on_queue_thread_locked() || ready_.size() + settle_.size() > 1) wake_threads_locked(1);
  idle_cv_.notify_all();
}

}  // namespace hikyaku::queue
