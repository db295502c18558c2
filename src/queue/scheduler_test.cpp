#include "queue/scheduler.hpp"

#include <unistd.h>

#include <filesystem>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

namespace hikyaku::queue {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;

// base::FakeClock is not thread-safe; the scheduler reads the clock from its
// workers while the test moves it.
class LockedFakeClock final : public base::Clock {
 public:
  explicit LockedFakeClock(time_point start) : now_(start) {}
  time_point now() const override {
    std::lock_guard lock(mu_);
    return now_;
  }
  void advance(std::chrono::nanoseconds d) {
    std::lock_guard lock(mu_);
    now_ += std::chrono::duration_cast<time_point::duration>(d);
  }

 private:
  mutable std::mutex mu_;
  time_point now_;
};

// Answers with a scripted outcome per target value (default: delivered), and
// records every attempt.
class FakeAgent final : public DeliveryAgent {
 public:
  void deliver(const DeliveryRequest& request, std::function<void(DeliveryOutcome)> done) override {
    DeliveryOutcome outcome{DeliveryOutcome::Kind::delivered, "2.0.0", "ok"};
    {
      std::lock_guard lock(mu_);
      attempts_.push_back(request.queue_id + " " + request.recipient + " " + request.target.str());
      EXPECT_NE(request.envelope, nullptr);
      EXPECT_GT(request.message_size, 0u);
      auto it = script_.find(request.target.value);
      if (it != script_.end()) outcome = it->second;
    }
    done(outcome);
  }
  void set(const std::string& target_value, DeliveryOutcome::Kind kind) {
    std::lock_guard lock(mu_);
    script_[target_value] =
        DeliveryOutcome{kind, kind == DeliveryOutcome::Kind::temporary ? "4.2.2" : "5.1.1", "scripted"};
  }
  size_t count(const std::string& target_str) {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const auto& a : attempts_) n += a.ends_with(" " + target_str) ? 1 : 0;
    return n;
  }
  size_t total() {
    std::lock_guard lock(mu_);
    return attempts_.size();
  }

 private:
  std::mutex mu_;
  std::map<std::string, DeliveryOutcome> script_;
  std::vector<std::string> attempts_;
};

config::Target mailbox(std::string name) { return config::Target{config::Target::Kind::mailbox, std::move(name)}; }

config::Target forward(std::string addr) { return config::Target{config::Target::Kind::forward, std::move(addr)}; }

// Holds every outcome until the test releases it (an agent whose answer is
// still on the wire), and records whether the bytes came from memory.
class GatedAgent final : public DeliveryAgent {
 public:
  void deliver(const DeliveryRequest& request, std::function<void(DeliveryOutcome)> done) override {
    std::lock_guard lock(mu_);
    from_memory_ = request.message != nullptr;
    threads_.push_back(std::this_thread::get_id());
    pending_.push_back(std::move(done));
    cv_.notify_all();
  }
  // The event loop's entry: declines unless take_now(true); counted.
  bool deliver_now(const DeliveryRequest& request, std::function<void(DeliveryOutcome)> done) override {
    std::lock_guard lock(mu_);
    ++now_calls_;
    if (!take_now_) return false;
    from_memory_ = request.message != nullptr;
    pending_.push_back(std::move(done));
    cv_.notify_all();
    return true;
  }
  void take_now(bool take) {
    std::lock_guard lock(mu_);
    take_now_ = take;
  }
  size_t now_calls() {
    std::lock_guard lock(mu_);
    return now_calls_;
  }
  bool wait_attempts(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 5s, [&] { return pending_.size() + answered_ >= n; });
  }
  void answer(DeliveryOutcome outcome) {
    std::function<void(DeliveryOutcome)> done;
    {
      std::lock_guard lock(mu_);
      ASSERT_FALSE(pending_.empty());
      done = std::move(pending_.front());
      pending_.erase(pending_.begin());
      ++answered_;
    }
    done(std::move(outcome));
  }
  bool from_memory() {
    std::lock_guard lock(mu_);
    return from_memory_;
  }
  // The threads deliver() was called on, in order.
  std::vector<std::thread::id> threads() {
    std::lock_guard lock(mu_);
    return threads_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::thread::id> threads_;
  std::vector<std::function<void(DeliveryOutcome)>> pending_;
  size_t answered_ = 0;
  bool from_memory_ = false;
  bool take_now_ = false;
  size_t now_calls_ = 0;
};

// Polls `done` (real time) for up to 5 s.
template <class F>
bool wait_for_test(F done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return done();
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/scheduler_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    config_.data_dir = tmpl;
    config_.delivery.retry = {60s, 300s};
    config_.delivery.expire = 3600s;
    spool_ = std::make_unique<Spool>(config_, clock_, /*sync=*/false);
    ASSERT_TRUE(spool_->create());
  }
  void TearDown() override { fs::remove_all(config_.data_dir); }

  std::unique_ptr<Scheduler> make_scheduler() {
    auto s = std::make_unique<Scheduler>(*spool_, config_, clock_, SchedulerOptions{.workers = 2});
    s->register_agent(config::Target::Kind::mailbox, agent_);
    return s;
  }
  std::string enqueue(const Plan& plan) {
    mail::Envelope env;
    env.sender = mail::Address{"s", "example.org"};
    for (const auto& rp : plan) env.recipients.push_back(mail::Address{rp.recipient, "example.test"});
    auto id = spool_->enqueue(env, plan, "Subject: t\r\n\r\nx\r\n");
    EXPECT_TRUE(id);
    return *id;
  }
  bool queued(const std::string& id) { return fs::exists(config_.spool_dir() / "queue" / id); }

  config::Config config_;
  LockedFakeClock clock_{base::Clock::time_point(std::chrono::seconds(1700000000))};
  std::unique_ptr<Spool> spool_;
  FakeAgent agent_;
};

TEST_F(SchedulerTest, SubmitAttemptsImmediatelyAndRemovesFile) {
  auto s = make_scheduler();
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"alice", {mailbox("alice")}}, {"bob", {mailbox("bob"), mailbox("archive")}}});
  s->submit(id);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:alice"), 1u);
  EXPECT_EQ(agent_.count("mailbox:bob"), 1u);
  EXPECT_EQ(agent_.count("mailbox:archive"), 1u);
  EXPECT_EQ(s->active_messages(), 0u);
  EXPECT_FALSE(queued(id)) << "every slot final: file removed";
}

TEST_F(SchedulerTest, RetryScheduleFollowsConfigThenLastInterval) {
  agent_.set("alice", DeliveryOutcome::Kind::temporary);
  auto s = make_scheduler();
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"alice", {mailbox("alice")}}});
  s->submit(id);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:alice"), 1u);

  // First retry after 60 s (+ up to 10% jitter): not at 59 s, surely by 67 s.
  clock_.advance(59s);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:alice"), 1u);
  clock_.advance(8s);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:alice"), 2u);

  // Then 300 s, and 300 s again (the last interval repeats).
  for (unsigned expected = 3; expected <= 4; ++expected) {
    clock_.advance(299s);
    ASSERT_TRUE(s->wait_idle(5s));
    EXPECT_EQ(agent_.count("mailbox:alice"), expected - 1);
    clock_.advance(31s);
    ASSERT_TRUE(s->wait_idle(5s));
    EXPECT_EQ(agent_.count("mailbox:alice"), expected);
  }
  auto m = spool_->load(id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->targets[0].attempts, 4u) << "attempts recorded durably";
  EXPECT_EQ(m->targets[0].last_reply, "4.2.2 scripted");
  EXPECT_GT(m->targets[0].next_attempt, clock_.now());
  s->stop();
}

TEST_F(SchedulerTest, PermanentFailureIsFinal) {
  agent_.set("nobody", DeliveryOutcome::Kind::permanent);
  auto s = make_scheduler();
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"nobody", {mailbox("nobody")}}});
  s->submit(id);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.total(), 1u);
  EXPECT_FALSE(queued(id));
}

TEST_F(SchedulerTest, ExpiryFailsTemporaryTarget) {
  agent_.set("alice", DeliveryOutcome::Kind::temporary);
  auto s = make_scheduler();
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"alice", {mailbox("alice")}}});
  s->submit(id);
  ASSERT_TRUE(s->wait_idle(5s));
  for (int i = 0; i < 20 && queued(id); ++i) {
    clock_.advance(400s);
    ASSERT_TRUE(s->wait_idle(5s));
  }
  EXPECT_FALSE(queued(id)) << "RFC 5321 §4.5.4.1: give up after expire";
  EXPECT_LE(agent_.total(), 12u);
}

TEST_F(SchedulerTest, RestartResumesWithoutRepeatingRecordedTargets) {
  agent_.set("bob", DeliveryOutcome::Kind::temporary);
  auto id = enqueue({{"alice", {mailbox("alice")}}, {"bob", {mailbox("bob")}}});
  {
    auto s = make_scheduler();
    ASSERT_TRUE(s->start());
    s->submit(id);
    ASSERT_TRUE(s->wait_idle(5s));
    s->stop();
  }
  EXPECT_EQ(agent_.count("mailbox:alice"), 1u);
  EXPECT_EQ(agent_.count("mailbox:bob"), 1u);
  ASSERT_TRUE(queued(id));

  // Restart: alice is recorded delivered; bob waits for his retry time.
  agent_.set("bob", DeliveryOutcome::Kind::delivered);
  auto s = make_scheduler();
  ASSERT_TRUE(s->start());
  EXPECT_EQ(s->active_messages(), 1u);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:bob"), 1u) << "recorded next-attempt time is kept";
  clock_.advance(70s);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:alice"), 1u) << "a recorded delivery is never repeated";
  EXPECT_EQ(agent_.count("mailbox:bob"), 2u);
  EXPECT_FALSE(queued(id));
}

TEST_F(SchedulerTest, RecoveryAttemptsUnsubmittedMessages) {
  // Crash after enqueue, before submit: start() finds and delivers it.
  auto id = enqueue({{"alice", {mailbox("alice")}}});
  auto s = make_scheduler();
  ASSERT_TRUE(s->start());
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:alice"), 1u);
  EXPECT_FALSE(queued(id));
}

TEST_F(SchedulerTest, MissingAgentDefersNeverDrops) {
  auto s = make_scheduler();
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"carol", {config::Target{config::Target::Kind::forward, "carol@gmail.example"}}}});
  s->submit(id);
  ASSERT_TRUE(s->wait_idle(5s));
  ASSERT_TRUE(queued(id));
  auto m = spool_->load(id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->targets[0].status, TargetStatus::pending);
  EXPECT_EQ(m->targets[0].attempts, 1u);
}

TEST_F(SchedulerTest, FallbackPolicyReplacesTargetDurably) {
  struct ToPostmaster final : FallbackPolicy {
    std::optional<config::Target> next(const TargetState& slot, const DeliveryOutcome&) override {
      if (slot.link == 0) return config::Target{config::Target::Kind::mailbox, "postmaster"};
      return std::nullopt;
    }
  } policy;
  agent_.set("gone", DeliveryOutcome::Kind::permanent);
  auto s = make_scheduler();
  s->set_fallback_policy(policy);
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"x", {mailbox("gone")}}});
  s->submit(id);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:gone"), 1u);
  EXPECT_EQ(agent_.count("mailbox:postmaster"), 1u);
  EXPECT_FALSE(queued(id));
}

// "Forward at once": a staged message's forward is attempted before the
// commit, from memory, on the submitting thread (no worker wake-up on the
// way to the far side); its outcome waits for committed(); the local
// mailbox slot waits for the commit too.
TEST_F(SchedulerTest, StagedForwardStartsBeforeCommitAndSettlesAfter) {
  GatedAgent forwards;
  auto s = make_scheduler();
  s->register_agent(config::Target::Kind::forward, forwards);
  ASSERT_TRUE(s->start());
  mail::Envelope env;
  env.sender = mail::Address{"s", "example.org"};
  env.recipients.push_back(mail::Address{"me", "example.test"});
  auto bytes = std::make_shared<const std::string>("Subject: t\r\n\r\nx\r\n");
  auto staged = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test"), mailbox("me")}}}, *bytes);
  ASSERT_TRUE(staged);
  const std::string id = staged->message.id;
  s->submit_staged(staged->message, bytes);
  EXPECT_EQ(forwards.threads().size(), 1u) << "the forward starts before submit_staged returns";
  ASSERT_TRUE(forwards.wait_attempts(1));
  EXPECT_EQ(forwards.threads()[0], std::this_thread::get_id()) << "on the caller's thread";
  EXPECT_TRUE(forwards.from_memory());
  EXPECT_EQ(agent_.count("mailbox:me"), 0u) << "local delivery waits for the commit";
  forwards.answer({DeliveryOutcome::Kind::delivered, "2.0.0", "ok"});
  EXPECT_EQ(s->active_messages(), 1u) << "the outcome is held";
  ASSERT_TRUE(spool_->commit(*staged, *bytes));
  s->committed(id);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:me"), 1u);
  EXPECT_EQ(s->active_messages(), 0u);
  EXPECT_FALSE(queued(id)) << "both slots final: file removed";
}

// Spool rule 6: after a failed commit (the disk is full, the client got 452
// and retries), a staged message's forward waits for committed(); the first
// commit that succeeds brings the fast start back.
TEST_F(SchedulerTest, AfterAFailedCommitForwardsWaitForTheCommit) {
  GatedAgent forwards;
  auto s = make_scheduler();
  s->register_agent(config::Target::Kind::forward, forwards);
  ASSERT_TRUE(s->start());
  mail::Envelope env;
  env.recipients.push_back(mail::Address{"me", "example.test"});
  auto bytes = std::make_shared<const std::string>("Subject: t\r\n\r\nx\r\n");
  const Plan plan = {{"me@example.test", {forward("me@gmail.test"), mailbox("me")}}};
  {
    // A failed commit: abandoned, as SpoolSink does.
    auto staged = spool_->stage(env, plan, *bytes);
    ASSERT_TRUE(staged);
    s->submit_staged(staged->message, bytes);
    ASSERT_TRUE(forwards.wait_attempts(1)) << "no failure yet: the forward starts at once";
    fs::remove_all(config_.spool_dir() / "queue");
    ASSERT_FALSE(spool_->commit(*staged, *bytes));
    fs::create_directory(config_.spool_dir() / "queue");
    s->abandoned(staged->message.id);
    forwards.answer({DeliveryOutcome::Kind::delivered, "2.0.0", "ok"});
  }
  // The client's retry: nothing starts before its commit...
  auto retry = spool_->stage(env, plan, *bytes);
  ASSERT_TRUE(retry);
  s->submit_staged(retry->message, bytes);
  EXPECT_EQ(forwards.threads().size(), 1u) << "the retry's forward waits for the commit";
  // ...and both slots are attempted after it.
  ASSERT_TRUE(spool_->commit(*retry, *bytes));
  s->committed(retry->message.id);
  ASSERT_TRUE(forwards.wait_attempts(2));
  ASSERT_TRUE(wait_for_test([&] { return agent_.count("mailbox:me") == 1; }));
  forwards.answer({DeliveryOutcome::Kind::delivered, "2.0.0", "ok"});
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_FALSE(queued(retry->message.id));
  // The commit succeeded: the next message's forward starts at once again.
  auto next = spool_->stage(env, plan, *bytes);
  ASSERT_TRUE(next);
  s->submit_staged(next->message, bytes);
  EXPECT_EQ(forwards.threads().size(), 3u) << "fast start resumed";
  ASSERT_TRUE(spool_->commit(*next, *bytes));
  s->committed(next->message.id);
  forwards.answer({DeliveryOutcome::Kind::delivered, "2.0.0", "ok"});
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_FALSE(queued(next->message.id));
}

// The event loop submits through deliver_now() only; what the agent
// declines (it would block) goes to deliver() on a worker thread.
TEST_F(SchedulerTest, EventLoopCallerUsesDeliverNowAndAWorkerForWhatItDeclines) {
  GatedAgent forwards;
  auto s = make_scheduler();
  s->register_agent(config::Target::Kind::forward, forwards);
  ASSERT_TRUE(s->start());
  mail::Envelope env;
  env.recipients.push_back(mail::Address{"me", "example.test"});
  auto bytes = std::make_shared<const std::string>("Subject: t\r\n\r\nx\r\n");
  auto staged = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test")}}}, *bytes);
  ASSERT_TRUE(staged);
  s->submit_staged(staged->message, bytes, Scheduler::Caller::event_loop);
  EXPECT_EQ(forwards.now_calls(), 1u);
  ASSERT_TRUE(forwards.wait_attempts(1));
  ASSERT_EQ(forwards.threads().size(), 1u);
  EXPECT_NE(forwards.threads()[0], std::this_thread::get_id()) << "declined: deliver() on a worker";
  ASSERT_TRUE(spool_->commit(*staged, *bytes));
  s->committed(staged->message.id);
  forwards.answer({DeliveryOutcome::Kind::delivered, "2.0.0", "ok"});
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_FALSE(queued(staged->message.id));
}

// Taken by deliver_now(): deliver() is never called; the outcome, reported
// on a thread that is not a worker (as the event loop would), is settled by
// a worker: the message completes and its file goes.
TEST_F(SchedulerTest, EventLoopCallerTakenByDeliverNowSettlesOnAWorker) {
  GatedAgent forwards;
  forwards.take_now(true);
  auto s = make_scheduler();
  s->register_agent(config::Target::Kind::forward, forwards);
  ASSERT_TRUE(s->start());
  mail::Envelope env;
  env.recipients.push_back(mail::Address{"me", "example.test"});
  auto bytes = std::make_shared<const std::string>("Subject: t\r\n\r\nx\r\n");
  auto staged = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test"), mailbox("me")}}}, *bytes);
  ASSERT_TRUE(staged);
  const std::string id = staged->message.id;
  s->submit_staged(staged->message, bytes, Scheduler::Caller::event_loop);
  EXPECT_EQ(forwards.now_calls(), 1u);
  ASSERT_TRUE(forwards.wait_attempts(1));
  EXPECT_TRUE(forwards.threads().empty()) << "taken: no deliver() call";
  EXPECT_TRUE(forwards.from_memory());
  ASSERT_TRUE(spool_->commit(*staged, *bytes));
  s->committed(id);
  ASSERT_TRUE(wait_for_test([&] { return agent_.count("mailbox:me") == 1; }));
  forwards.answer({DeliveryOutcome::Kind::delivered, "2.0.0", "ok"});  // durable now: queued for a worker
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(s->active_messages(), 0u);
  EXPECT_FALSE(queued(id));
}

// An outcome reported on a thread that is not a worker (the SMTP client's
// event loop) is settled on a worker: the spool record's fdatasync and the
// fallback hooks never block the agent's thread.
TEST_F(SchedulerTest, OutcomeFromAnotherThreadIsSettledOnAWorker) {
  struct Recorder final : FallbackPolicy {
    std::optional<config::Target> next(const TargetState&, const DeliveryOutcome&) override { return std::nullopt; }
    void failed(const SpooledMessage&, const TargetState&, const DeliveryOutcome&) override {
      std::lock_guard lock(mu);
      thread = std::this_thread::get_id();
    }
    std::optional<std::thread::id> seen() {
      std::lock_guard lock(mu);
      return thread;
    }
    std::mutex mu;
    std::optional<std::thread::id> thread;
  } policy;
  GatedAgent forwards;
  auto s = make_scheduler();
  s->register_agent(config::Target::Kind::forward, forwards);
  s->set_fallback_policy(policy);
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"x", {forward("me@gmail.test")}}});
  s->submit(id);
  ASSERT_TRUE(forwards.wait_attempts(1));
  forwards.answer({DeliveryOutcome::Kind::permanent, "5.7.1", "refused"});
  ASSERT_TRUE(s->wait_idle(5s));
  ASSERT_TRUE(policy.seen().has_value());
  EXPECT_NE(*policy.seen(), std::this_thread::get_id());
}

// A failed commit (the client gets 451 and retries): the held outcome is
// discarded, nothing else is attempted, nothing stays queued.
TEST_F(SchedulerTest, AbandonedStageDiscardsOutcomes) {
  GatedAgent forwards;
  auto s = make_scheduler();
  s->register_agent(config::Target::Kind::forward, forwards);
  ASSERT_TRUE(s->start());
  mail::Envelope env;
  env.recipients.push_back(mail::Address{"me", "example.test"});
  auto bytes = std::make_shared<const std::string>("Subject: t\r\n\r\nx\r\n");
  std::string id;
  {
    auto staged = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test"), mailbox("me")}}}, *bytes);
    ASSERT_TRUE(staged);
    id = staged->message.id;
    s->submit_staged(staged->message, bytes);
    ASSERT_TRUE(forwards.wait_attempts(1));
  }  // never committed: the tmp file goes
  s->abandoned(id);
  forwards.answer({DeliveryOutcome::Kind::delivered, "2.0.0", "ok"});
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:me"), 0u);
  EXPECT_EQ(s->active_messages(), 0u);
  EXPECT_FALSE(queued(id));
}

// A diversion to a local mailbox is not recorded before the mailbox attempt:
// the mailbox outcome's record carries the whole state (link, diverted note).
TEST_F(SchedulerTest, DiversionToMailboxIsRecordedWithItsOutcome) {
  struct ToFallback final : FallbackPolicy {
    std::optional<config::Target> next(const TargetState& slot, const DeliveryOutcome&) override {
      if (slot.link == 0) return config::Target{config::Target::Kind::mailbox, "fallback"};
      return std::nullopt;
    }
  } policy;
  agent_.set("refused", DeliveryOutcome::Kind::permanent);
  agent_.set("fallback", DeliveryOutcome::Kind::temporary);  // the mailbox defers
  auto s = make_scheduler();
  s->set_fallback_policy(policy);
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"x", {mailbox("refused")}}});
  s->submit(id);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:fallback"), 1u);
  auto m = spool_->load(id);
  ASSERT_TRUE(m);
  ASSERT_EQ(m->targets.size(), 1u);
  EXPECT_EQ(m->targets[0].link, 1u);
  EXPECT_EQ(m->targets[0].target.str(), "mailbox:fallback");
  EXPECT_EQ(m->targets[0].status, TargetStatus::pending);
  EXPECT_EQ(m->targets[0].attempts, 1u);
}

// A refusal before the commit whose next link is a local mailbox is acted on
// at once: the fallback copy is written while the spool syncs; the
// diverted() hook (the notice reads the spool file) waits for the commit.
TEST_F(SchedulerTest, EarlyRefusalDivertsToMailboxBeforeCommit) {
  struct ToFallback final : FallbackPolicy {
    std::optional<config::Target> next(const TargetState& slot, const DeliveryOutcome&) override {
      if (slot.link == 0) return config::Target{config::Target::Kind::mailbox, "fallback"};
      return std::nullopt;
    }
    void diverted(const SpooledMessage& message, const TargetState&, const TargetState&,
                  const DeliveryOutcome&) override {
      file_existed = fs::exists(message.path);
      ++calls;
    }
    std::atomic<int> calls{0};
    std::atomic<bool> file_existed{false};
  } policy;
  GatedAgent forwards;
  auto s = make_scheduler();
  s->register_agent(config::Target::Kind::forward, forwards);
  s->set_fallback_policy(policy);
  ASSERT_TRUE(s->start());
  mail::Envelope env;
  env.recipients.push_back(mail::Address{"me", "example.test"});
  auto bytes = std::make_shared<const std::string>("Subject: t\r\n\r\nx\r\n");
  auto staged = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test")}}}, *bytes);
  ASSERT_TRUE(staged);
  const std::string id = staged->message.id;
  s->submit_staged(staged->message, bytes);
  ASSERT_TRUE(forwards.wait_attempts(1));
  forwards.answer({DeliveryOutcome::Kind::permanent, "5.7.1", "refused"});
  ASSERT_TRUE(wait_for_test([&] { return agent_.count("mailbox:fallback") == 1; }))
      << "the fallback copy is written before the commit";
  EXPECT_EQ(policy.calls.load(), 0) << "the notice waits for the commit";
  ASSERT_TRUE(spool_->commit(*staged, *bytes));
  s->committed(id);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(policy.calls.load(), 1);
  EXPECT_TRUE(policy.file_existed.load()) << "the hook ran while the queue file existed";
  EXPECT_EQ(agent_.count("mailbox:fallback"), 1u);
  EXPECT_EQ(s->active_messages(), 0u);
  EXPECT_FALSE(queued(id));
}

TEST_F(SchedulerTest, FlushMakesEverythingDue) {
  agent_.set("alice", DeliveryOutcome::Kind::temporary);
  auto s = make_scheduler();
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"alice", {mailbox("alice")}}});
  s->submit(id);
  ASSERT_TRUE(s->wait_idle(5s));
  s->flush();
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:alice"), 2u);
}

TEST_F(SchedulerTest, ManyMessagesAllDelivered) {
  auto s = make_scheduler();
  ASSERT_TRUE(s->start());
  std::vector<std::string> ids;
  for (int i = 0; i < 200; ++i) {
    ids.push_back(enqueue({{"alice", {mailbox("alice")}}}));
    s->submit(ids.back());
  }
  ASSERT_TRUE(s->wait_idle(10s));
  EXPECT_EQ(agent_.total(), 200u);
  for (const auto& id : ids) EXPECT_FALSE(queued(id));
}

}  // namespace
}  // namespace hikyaku::queue
