#include "queue/scheduler.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "config/config.hpp"

namespace hikyaku::queue {
namespace {
namespace fs = std::filesystem;
using namespace std::chrono_literals;
using policy::AttemptResult;

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
  void deliver(const DeliveryRequest& request, std::function<void(AttemptResult)> done) override {
    AttemptResult outcome{AttemptResult::Kind::delivered, "2.0.0", "ok"};
    {
      std::lock_guard lock(mu_);
      attempts_.push_back(request.queue_id + " " + request.recipient + " " + request.target.str());
      threads_.push_back(std::this_thread::get_id());
      EXPECT_NE(request.envelope, nullptr);
      EXPECT_GT(request.message_size, 0u);
      auto it = script_.find(request.target.value);
      if (it != script_.end()) outcome = it->second;
    }
    done(outcome);
  }
  void set(const std::string& target_value, AttemptResult::Kind kind) {
    std::lock_guard lock(mu_);
    script_[target_value] =
        AttemptResult{kind, kind == AttemptResult::Kind::temporary ? "4.2.2" : "5.1.1", "scripted"};
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
  std::vector<std::thread::id> threads() {
    std::lock_guard lock(mu_);
    return threads_;
  }

 private:
  std::mutex mu_;
  std::map<std::string, AttemptResult> script_;
  std::vector<std::string> attempts_;
  std::vector<std::thread::id> threads_;
};

mail::Target mailbox(std::string name) { return mail::Target{mail::Target::Kind::mailbox, std::move(name)}; }

mail::Target forward(std::string addr) { return mail::Target{mail::Target::Kind::forward, std::move(addr)}; }

// Holds every outcome until the test releases it (an agent whose answer is
// still on the wire), and records whether the bytes came from memory.
class GatedAgent final : public DeliveryAgent {
 public:
  void deliver(const DeliveryRequest& request, std::function<void(AttemptResult)> done) override {
    std::lock_guard lock(mu_);
    from_memory_ = request.message != nullptr;
    threads_.push_back(std::this_thread::get_id());
    pending_.push_back(std::move(done));
    cv_.notify_all();
  }
  bool wait_attempts(size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, 5s, [&] { return pending_.size() + answered_ >= n; });
  }
  void answer(AttemptResult outcome) {
    std::function<void(AttemptResult)> done;
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
  std::vector<std::function<void(AttemptResult)>> pending_;
  size_t answered_ = 0;
  bool from_memory_ = false;
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
    auto loaded = config::load_config_text(R"(
hostname = "mx.example.test"
[delivery]
retry = ["60s", "300s"]
expire = "1h"
[[domain]]
name = "example.test"
[[mailbox]]
name = "fallback"
[[mailbox]]
name = "postmaster"
[[forward]]
to = "gone@gmail.test"
hidden = false
fallback = ["mailbox:postmaster"]
[[forward]]
to = "me@gmail.test"
fallback = ["mailbox:fallback"]
notify = true
)",
                                           "t.toml", tmpl);
    ASSERT_TRUE(loaded.config) << loaded.errors.at(0).str();
    config_ = std::move(*loaded.config);
    config_.data_dir = tmpl;
    rules_ = std::make_unique<base::Live<policy::Rules>>(policy::Rules::create(config_));
    spool_ = std::make_unique<Spool>(config_.spool_dir(), clock_, /*sync=*/false);
    ASSERT_TRUE(spool_->create());
  }
  void TearDown() override { fs::remove_all(config_.data_dir); }

  std::unique_ptr<Scheduler> make_scheduler() {
    auto s = std::make_unique<Scheduler>(*spool_, *rules_, clock_, SchedulerOptions{.threads = 2});
    s->register_agent(mail::Target::Kind::mailbox, agent_);
    return s;
  }
  // A small message from s@example.org to me@example.test, to stage.
  static mail::Envelope to_me() {
    mail::Envelope env;
    env.sender = mail::Address{"s", "example.org"};
    env.recipients.push_back(mail::Address{"me", "example.test"});
    return env;
  }
  static std::shared_ptr<const mail::Message> small_message() {
    return std::make_shared<const mail::Message>(mail::Message{"Subject: t\r\n\r\nx\r\n", std::nullopt});
  }
  // Room for one forward at a time, answered by `forwards`; started.
  std::unique_ptr<Scheduler> one_forward_at_a_time(DeliveryAgent& forwards) {
    auto s = std::make_unique<Scheduler>(*spool_, *rules_, clock_, SchedulerOptions{.threads = 2, .max_in_flight = 1});
    s->register_agent(mail::Target::Kind::mailbox, agent_);
    s->register_agent(mail::Target::Kind::forward, forwards);
    EXPECT_TRUE(s->start());
    return s;
  }
  std::string enqueue(const std::vector<RecipientPlan>& plan) {
    mail::Envelope env;
    env.sender = mail::Address{"s", "example.org"};
    for (const auto& rp : plan) env.recipients.push_back(mail::Address{rp.recipient, "example.test"});
    auto id = spool_->enqueue(env, plan, "Subject: t\r\n\r\nx\r\n");
    EXPECT_TRUE(id);
    return *id;
  }
  bool queued(const std::string& id) { return fs::exists(config_.spool_dir() / "queue" / id); }
  // Queued messages that are notices.
  size_t notices() {
    size_t n = 0;
    auto entries = spool_->list();
    for (const auto& e : *entries) {
      auto m = spool_->load(e.id);
      if (m && m->origin == Origin::notice) ++n;
    }
    return n;
  }

  config::Config config_;
  std::unique_ptr<base::Live<policy::Rules>> rules_;
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
  agent_.set("alice", AttemptResult::Kind::temporary);
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
  EXPECT_EQ(m->slots[0].attempts, 4u) << "attempts recorded durably";
  EXPECT_EQ(m->slots[0].last_reply, "4.2.2 scripted");
  EXPECT_GT(m->slots[0].next_attempt, clock_.now());
  s->stop();
}

TEST_F(SchedulerTest, PermanentFailureIsFinal) {
  agent_.set("nobody", AttemptResult::Kind::permanent);
  auto s = make_scheduler();
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"nobody", {mailbox("nobody")}}});
  s->submit(id);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.total(), 1u);
  EXPECT_FALSE(queued(id));
}

TEST_F(SchedulerTest, ExpiryFailsTemporaryTarget) {
  agent_.set("alice", AttemptResult::Kind::temporary);
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
  agent_.set("bob", AttemptResult::Kind::temporary);
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
  agent_.set("bob", AttemptResult::Kind::delivered);
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
  auto id = enqueue({{"carol", {mail::Target{mail::Target::Kind::forward, "carol@gmail.example"}}}});
  s->submit(id);
  ASSERT_TRUE(s->wait_idle(5s));
  ASSERT_TRUE(queued(id));
  auto m = spool_->load(id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->slots[0].status, SlotStatus::pending);
  EXPECT_EQ(m->slots[0].attempts, 1u);
}

// The delivery policy's divert: the next link of the configured chain.
TEST_F(SchedulerTest, RefusedForwardMovesToItsFallbackLink) {
  agent_.set("gone@gmail.test", AttemptResult::Kind::permanent);
  auto s = make_scheduler();
  s->register_agent(mail::Target::Kind::forward, agent_);
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"x", {forward("gone@gmail.test")}}});
  s->submit(id);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("forward:gone@gmail.test"), 1u);
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
  s->register_agent(mail::Target::Kind::forward, forwards);
  ASSERT_TRUE(s->start());
  const mail::Envelope env = to_me();
  const auto bytes = small_message();
  auto staged = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test"), mailbox("me")}}}, *bytes);
  ASSERT_TRUE(staged);
  const std::string id = staged->message.id;
  s->submit_staged(staged->message, bytes);
  EXPECT_EQ(forwards.threads().size(), 1u) << "the forward starts before submit_staged returns";
  ASSERT_TRUE(forwards.wait_attempts(1));
  EXPECT_EQ(forwards.threads()[0], std::this_thread::get_id()) << "on the caller's thread";
  EXPECT_TRUE(forwards.from_memory());
  EXPECT_EQ(agent_.count("mailbox:me"), 0u) << "local delivery waits for the commit";
  forwards.answer({AttemptResult::Kind::delivered, "2.0.0", "ok"});
  EXPECT_EQ(s->active_messages(), 1u) << "the result is held";
  ASSERT_TRUE(spool_->commit(*staged, *bytes));
  s->committed(id);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:me"), 1u);
  EXPECT_EQ(s->active_messages(), 0u);
  EXPECT_FALSE(queued(id)) << "both slots final: file removed";
}

// Forwards waiting for a slow far side fill max_in_flight; the mailbox
// copies of later messages are still delivered, and the next forward
// starts only when one of them is done.
TEST_F(SchedulerTest, ForwardsInFlightNeverHoldBackMailboxDeliveries) {
  GatedAgent forwards;
  auto scheduler = one_forward_at_a_time(forwards);
  Scheduler& s = *scheduler;
  const auto first = enqueue({{"me@example.test", {forward("me@gmail.test")}}});
  s.submit(first);
  ASSERT_TRUE(forwards.wait_attempts(1));
  const auto second = enqueue({{"me@example.test", {forward("me@gmail.test"), mailbox("me")}}});
  s.submit(second);
  EXPECT_TRUE(wait_for_test([&] { return agent_.count("mailbox:me") == 1; }))
      << "the mailbox copy waited behind a forward in flight";
  EXPECT_EQ(forwards.threads().size(), 1u) << "the second forward waits for room";
  forwards.answer({AttemptResult::Kind::delivered, "2.0.0", "ok"});
  ASSERT_TRUE(forwards.wait_attempts(2));
  forwards.answer({AttemptResult::Kind::delivered, "2.0.0", "ok"});
  ASSERT_TRUE(s.wait_idle(5s));
  EXPECT_FALSE(queued(first));
  EXPECT_FALSE(queued(second));
}

// While commits fail (a full disk), nothing of a staged message starts
// before its commit: a client retrying a 451'd message must not reach the
// far side once per retry. After a successful commit the fast start resumes.
TEST_F(SchedulerTest, NothingStartsBeforeTheCommitWhileCommitsFail) {
  GatedAgent forwards;
  auto s = make_scheduler();
  s->register_agent(mail::Target::Kind::forward, forwards);
  ASSERT_TRUE(s->start());
  mail::Envelope env;
  env.recipients.push_back(mail::Address{"me", "example.test"});
  const auto bytes = small_message();

  // A commit fails: its queue id is taken in queue/ already.
  auto clash = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test")}}}, *bytes);
  ASSERT_TRUE(clash);
  {
    std::ofstream(clash->message.path) << "occupied";
  }
  EXPECT_FALSE(spool_->commit(*clash, *bytes));
  EXPECT_TRUE(spool_->commit_in_doubt(1));
  fs::remove(clash->message.path);

  auto staged = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test")}}}, *bytes);
  ASSERT_TRUE(staged);
  s->submit_staged(staged->message, bytes);
  EXPECT_TRUE(forwards.threads().empty()) << "no forward before the commit while commits fail";
  ASSERT_TRUE(spool_->commit(*staged, *bytes));
  EXPECT_FALSE(spool_->commit_in_doubt(1));
  s->committed(staged->message.id);
  ASSERT_TRUE(forwards.wait_attempts(1)) << "attempted once durable";
  forwards.answer({AttemptResult::Kind::delivered, "2.0.0", "ok"});
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_FALSE(queued(staged->message.id));

  // Healthy again: the next message's forward starts before its commit.
  auto next = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test")}}}, *bytes);
  ASSERT_TRUE(next);
  s->submit_staged(next->message, bytes);
  EXPECT_EQ(forwards.threads().size(), 2u);
  ASSERT_TRUE(spool_->commit(*next, *bytes));
  s->committed(next->message.id);
  forwards.answer({AttemptResult::Kind::delivered, "2.0.0", "ok"});
  ASSERT_TRUE(s->wait_idle(5s));
}

// A result reported on a thread that is not a queue thread (the SMTP
// client's event loop) is settled on a queue thread: the spool record's
// fdatasync and the diversion's mailbox write never block the agent's
// thread.
TEST_F(SchedulerTest, ResultFromAnotherThreadIsSettledOnAQueueThread) {
  GatedAgent forwards;
  auto s = make_scheduler();
  s->register_agent(mail::Target::Kind::forward, forwards);
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"x", {forward("gone@gmail.test")}}});
  s->submit(id);
  ASSERT_TRUE(forwards.wait_attempts(1));
  forwards.answer({AttemptResult::Kind::permanent, "5.7.1", "refused"});
  ASSERT_TRUE(s->wait_idle(5s));
  ASSERT_EQ(agent_.count("mailbox:postmaster"), 1u);
  ASSERT_EQ(agent_.threads().size(), 1u);
  EXPECT_NE(agent_.threads()[0], std::this_thread::get_id());
}

// A staged forward that found no room (max_in_flight) waits in the ready
// line; committed() must not queue it a second time, or the copy would be
// retried at once after its first deferral instead of at its retry time.
TEST_F(SchedulerTest, ACommitDoesNotQueueAWaitingForwardTwice) {
  GatedAgent forwards;
  auto scheduler = one_forward_at_a_time(forwards);
  Scheduler& s = *scheduler;
  const auto first = enqueue({{"me@example.test", {forward("me@gmail.test")}}});
  s.submit(first);
  ASSERT_TRUE(forwards.wait_attempts(1));  // holds the only place

  const mail::Envelope env = to_me();
  const auto bytes = small_message();
  auto staged = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test")}}}, *bytes);
  ASSERT_TRUE(staged);
  s.submit_staged(staged->message, bytes);  // no room: waits in line
  ASSERT_TRUE(spool_->commit(*staged, *bytes));
  s.committed(staged->message.id);

  forwards.answer({AttemptResult::Kind::delivered, "2.0.0", "ok"});
  ASSERT_TRUE(forwards.wait_attempts(2));
  forwards.answer({AttemptResult::Kind::temporary, "4.2.2", "try later"});
  // Idle means nothing in flight and nothing due: a duplicate task would
  // be in flight again (held by the gate) and never let it become idle.
  ASSERT_TRUE(s.wait_idle(5s)) << "the deferred forward was attempted again at once";
  EXPECT_EQ(forwards.threads().size(), 2u);
  EXPECT_TRUE(queued(staged->message.id)) << "deferred: waits for its retry time";
  s.stop();
}

// Shutdown: after halt() no queue thread starts an attempt (the agents
// are being stopped), and stop() returns once the last in-flight result
// comes in from another thread, after the queue threads have left.
TEST_F(SchedulerTest, HaltStartsNothingAndStopWaitsForTheLastForeignResult) {
  GatedAgent forwards;
  auto scheduler = one_forward_at_a_time(forwards);
  Scheduler& s = *scheduler;
  const auto first = enqueue({{"me@example.test", {forward("me@gmail.test")}}});
  s.submit(first);
  ASSERT_TRUE(forwards.wait_attempts(1));
  const auto second = enqueue({{"me@example.test", {forward("me@gmail.test")}}});
  s.submit(second);  // waits for room: max_in_flight = 1
  s.halt();
  auto stopped = std::async(std::launch::async, [&] { s.stop(); });
  EXPECT_EQ(stopped.wait_for(100ms), std::future_status::timeout) << "stop() waits for the forward in flight";
  forwards.answer({AttemptResult::Kind::temporary, "4.3.2", "delivery interrupted by shutdown"});
  if (stopped.wait_for(5s) != std::future_status::ready) {
    ADD_FAILURE() << "stop() did not return after the last result";
    std::abort();  // the Scheduler cannot be destroyed under a waiting stop()
  }
  EXPECT_EQ(forwards.threads().size(), 1u) << "the second forward was started after halt()";
  EXPECT_TRUE(queued(first)) << "deferred, kept for the next start";
  EXPECT_TRUE(queued(second));
}

// A failed commit (the client gets 451 and retries): the held outcome is
// discarded, nothing else is attempted, nothing stays queued.
TEST_F(SchedulerTest, AbandonedStageDiscardsOutcomes) {
  GatedAgent forwards;
  auto s = make_scheduler();
  s->register_agent(mail::Target::Kind::forward, forwards);
  ASSERT_TRUE(s->start());
  mail::Envelope env;
  env.recipients.push_back(mail::Address{"me", "example.test"});
  const auto bytes = small_message();
  std::string id;
  {
    auto staged = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test"), mailbox("me")}}}, *bytes);
    ASSERT_TRUE(staged);
    id = staged->message.id;
    s->submit_staged(staged->message, bytes);
    ASSERT_TRUE(forwards.wait_attempts(1));
  }  // never committed: the tmp file goes
  s->abandoned(id);
  forwards.answer({AttemptResult::Kind::delivered, "2.0.0", "ok"});
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:me"), 0u);
  EXPECT_EQ(s->active_messages(), 0u);
  EXPECT_FALSE(queued(id));
}

// A diversion to a local mailbox is not recorded before the mailbox attempt:
// the mailbox outcome's record carries the whole state (link, diverted note).
TEST_F(SchedulerTest, DiversionToMailboxIsRecordedWithItsOutcome) {
  agent_.set("me@gmail.test", AttemptResult::Kind::permanent);
  agent_.set("fallback", AttemptResult::Kind::temporary);  // the mailbox defers
  auto s = make_scheduler();
  s->register_agent(mail::Target::Kind::forward, agent_);
  ASSERT_TRUE(s->start());
  auto id = enqueue({{"x", {forward("me@gmail.test")}}});
  s->submit(id);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:fallback"), 1u);
  auto m = spool_->load(id);
  ASSERT_TRUE(m);
  ASSERT_EQ(m->slots.size(), 1u);
  EXPECT_EQ(m->slots[0].link, 1u);
  EXPECT_EQ(m->slots[0].target.str(), "mailbox:fallback");
  EXPECT_EQ(m->slots[0].status, SlotStatus::pending);
  EXPECT_EQ(m->slots[0].attempts, 1u);
  EXPECT_TRUE(m->slots[0].diverted.find("reason=") != std::string::npos) << m->slots[0].diverted;
}

// A refusal before the commit whose next link is a local mailbox is acted on
// at once: the fallback copy is written while the spool syncs; the owner's
// notice (notify = true) is queued only once the message is durable.
TEST_F(SchedulerTest, EarlyRefusalDivertsToMailboxBeforeCommitAndNoticesAfter) {
  GatedAgent forwards;
  auto s = make_scheduler();
  s->register_agent(mail::Target::Kind::forward, forwards);
  ASSERT_TRUE(s->start());
  const mail::Envelope env = to_me();
  const auto bytes = small_message();
  auto staged = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test")}}}, *bytes);
  ASSERT_TRUE(staged);
  const std::string id = staged->message.id;
  s->submit_staged(staged->message, bytes);
  ASSERT_TRUE(forwards.wait_attempts(1));
  forwards.answer({AttemptResult::Kind::permanent, "5.7.1", "refused"});
  ASSERT_TRUE(wait_for_test([&] { return agent_.count("mailbox:fallback") == 1; }))
      << "the fallback copy is written before the commit";
  EXPECT_EQ(notices(), 0u) << "the notice waits for the commit";
  ASSERT_TRUE(spool_->commit(*staged, *bytes));
  s->committed(id);
  ASSERT_TRUE(forwards.wait_attempts(2)) << "the notice goes to the forward address";
  EXPECT_EQ(notices(), 1u);
  forwards.answer({AttemptResult::Kind::delivered, "2.0.0", "ok"});
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:fallback"), 1u);
  EXPECT_EQ(s->active_messages(), 0u);
  EXPECT_FALSE(queued(id));
}

// Spool rule 7: a refusal before the commit whose fallback copy is
// durable finishes the message: finished_before_commit() waits for the
// copy, the commit writes no queue file, and committed(…, finished) sends
// the notice and forgets the message (nothing to record or remove).
TEST_F(SchedulerTest, AnEarlyDiversionFinishesTheMessageBeforeItsCommit) {
  GatedAgent forwards;
  auto s = make_scheduler();
  s->register_agent(mail::Target::Kind::forward, forwards);
  ASSERT_TRUE(s->start());
  const mail::Envelope env = to_me();
  const auto bytes = small_message();
  auto staged = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test")}}}, *bytes);
  ASSERT_TRUE(staged);
  const std::string id = staged->message.id;
  s->submit_staged(staged->message, bytes);
  ASSERT_TRUE(forwards.wait_attempts(1));
  forwards.answer({AttemptResult::Kind::permanent, "5.7.1", "refused"});
  auto st = spool_->commit(*staged, *bytes, [&] { return s->finished_before_commit(id); });
  ASSERT_TRUE(st) << st.error().message;
  EXPECT_EQ(*st, Committed::finished);
  EXPECT_EQ(agent_.count("mailbox:fallback"), 1u) << "the copy was written before the commit's answer";
  EXPECT_FALSE(queued(id));
  EXPECT_TRUE(fs::is_empty(config_.spool_dir() / "tmp"));
  s->committed(id, *st);
  ASSERT_TRUE(forwards.wait_attempts(2)) << "the notice goes to the forward address";
  EXPECT_EQ(notices(), 1u);
  forwards.answer({AttemptResult::Kind::delivered, "2.0.0", "ok"});
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(agent_.count("mailbox:fallback"), 1u);
  EXPECT_EQ(s->active_messages(), 0u);
}

// The commit's question never waits for a far side: a forward still on the
// wire (or a local slot not yet attempted) means the file is needed. A
// forward the far side took before the question finishes the message.
TEST_F(SchedulerTest, TheCommitWaitsForNoFarSide) {
  GatedAgent forwards;
  auto s = make_scheduler();
  s->register_agent(mail::Target::Kind::forward, forwards);
  ASSERT_TRUE(s->start());
  const mail::Envelope env = to_me();
  const auto bytes = small_message();

  auto with_local = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test"), mailbox("me")}}}, *bytes);
  ASSERT_TRUE(with_local);
  s->submit_staged(with_local->message, bytes);
  ASSERT_TRUE(forwards.wait_attempts(1));
  const auto asked = std::chrono::steady_clock::now();
  EXPECT_FALSE(s->finished_before_commit(with_local->message.id)) << "the forward is still on the wire";
  EXPECT_LT(std::chrono::steady_clock::now() - asked, 1s) << "and is not waited for";
  forwards.answer({AttemptResult::Kind::delivered, "2.0.0", "ok"});
  EXPECT_FALSE(s->finished_before_commit(with_local->message.id)) << "the mailbox slot waits for the commit";
  ASSERT_TRUE(spool_->commit(*with_local, *bytes));
  s->committed(with_local->message.id);

  auto forward_only = spool_->stage(env, {{"me@example.test", {forward("me@gmail.test")}}}, *bytes);
  ASSERT_TRUE(forward_only);
  const std::string id = forward_only->message.id;
  s->submit_staged(forward_only->message, bytes);
  ASSERT_TRUE(forwards.wait_attempts(2));
  forwards.answer({AttemptResult::Kind::delivered, "2.0.0", "ok"});
  auto st = spool_->commit(*forward_only, *bytes, [&] { return s->finished_before_commit(id); });
  ASSERT_TRUE(st);
  EXPECT_EQ(*st, Committed::finished) << "delivered before the commit: no queue file";
  s->committed(id, *st);
  ASSERT_TRUE(s->wait_idle(5s));
  EXPECT_EQ(s->active_messages(), 0u);
  EXPECT_FALSE(queued(id));
  EXPECT_FALSE(queued(with_local->message.id));
}

TEST_F(SchedulerTest, FlushMakesEverythingDue) {
  agent_.set("alice", AttemptResult::Kind::temporary);
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
