// Issue 3 additions to the spool and scheduler: the planned target, the
// diversion note and the message origin survive a reload; the scheduler
// calls the message-aware FallbackPolicy hooks and passes the note on.
#include <unistd.h>

#include <filesystem>
#include <mutex>

#include <gtest/gtest.h>

#include "queue/scheduler.hpp"

namespace hikyaku::queue {
namespace {
using namespace std::chrono_literals;

mail::Target mailbox(std::string n) { return mail::Target{mail::Target::Kind::mailbox, std::move(n)}; }

struct Recorder final : DeliveryAgent {
  std::mutex mu;
  std::vector<DeliveryRequest> seen;
  void deliver(const DeliveryRequest& r, std::function<void(DeliveryOutcome)> done) override {
    bool refuse = r.target.value == "gone";
    {
      std::lock_guard lock(mu);
      seen.push_back(r);
    }
    done(refuse ? DeliveryOutcome{DeliveryOutcome::Kind::permanent, "5.1.1", "550 gone"}
                : DeliveryOutcome{DeliveryOutcome::Kind::delivered, "2.0.0", "ok"});
  }
};

struct Policy final : FallbackPolicy {
  std::mutex mu;
  int diverted_calls = 0, failed_calls = 0;
  std::optional<mail::Target> next(const TargetState& s, const DeliveryOutcome&) override {
    if (s.link == 0) return mailbox("spare");
    return std::nullopt;
  }
  std::optional<Diversion> divert(const SpooledMessage& m, const TargetState& s, const DeliveryOutcome& o,
                                  base::Clock::time_point) override {
    if (m.origin != Origin::received) return std::nullopt;
    auto t = next(s, o);
    if (!t) return std::nullopt;
    return Diversion{*t, "NOTE " + o.detail};
  }
  void diverted(const SpooledMessage&, const TargetState& from, const TargetState& to,
                const DeliveryOutcome&) override {
    std::lock_guard lock(mu);
    EXPECT_EQ(from.target.value, "gone");
    EXPECT_EQ(to.link, 1u);
    EXPECT_EQ(to.planned.value, "gone");
    ++diverted_calls;
  }
  void failed(const SpooledMessage&, const TargetState&, const DeliveryOutcome&) override {
    std::lock_guard lock(mu);
    ++failed_calls;
  }
};

class FallbackHooks : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/fallback_hooks.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    config_.data_dir = tmpl;
    spool_ = std::make_unique<Spool>(config_, clock_, false);
    ASSERT_TRUE(spool_->create());
  }
  void TearDown() override { std::filesystem::remove_all(config_.data_dir); }
  std::string enqueue(const std::string& target, Origin origin = Origin::received) {
    mail::Envelope env;
    env.sender = mail::Address{"s", "x.test"};
    env.recipients.push_back(mail::Address{"r", "example.test"});
    auto id = spool_->enqueue(env, Plan{RecipientPlan("r@example.test", {mailbox(target)})}, "Subject: x\r\n\r\nb\r\n",
                              origin);
    EXPECT_TRUE(id);
    return *id;
  }
  config::Config config_;
  base::SystemClock clock_;
  std::unique_ptr<Spool> spool_;
};

TEST_F(FallbackHooks, RecordKeepsPlannedTargetNoteAndOrigin) {
  auto id = enqueue("gone", Origin::notice);
  auto m = spool_->load(id);
  ASSERT_TRUE(m);
  EXPECT_EQ(m->origin, Origin::notice);
  TargetState s = m->targets[0];
  EXPECT_EQ(s.planned.value, "gone");
  s.target = mailbox("spare");
  s.link = 1;
  s.diverted = "Thu, 01 Jan 1970 00:00:00 +0000; reason=\"550 x y\"";
  ASSERT_TRUE(spool_->record(*m, 0, s));
  auto again = spool_->load(id);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->torn_records, 0u);
  EXPECT_EQ(again->targets[0].target.value, "spare");
  EXPECT_EQ(again->targets[0].planned.value, "gone");
  EXPECT_EQ(again->targets[0].diverted, s.diverted);
  EXPECT_EQ(again->origin, Origin::notice);
}

TEST_F(FallbackHooks, SchedulerDivertsWithNoteAndCallsHooks) {
  Recorder agent;
  Policy policy;
  Scheduler s(*spool_, config_, clock_);
  s.register_agent(mail::Target::Kind::mailbox, agent);
  s.set_fallback_policy(policy);
  ASSERT_TRUE(s.start());
  s.submit(enqueue("gone"));
  s.submit(enqueue("gone", Origin::dsn));  // generated: never diverted, fails
  ASSERT_TRUE(s.wait_idle(5s));
  s.stop();
  std::lock_guard lock(agent.mu);
  ASSERT_EQ(agent.seen.size(), 3u);
  int spare = 0;
  for (const auto& r : agent.seen) {
    if (r.target.value == "spare") {
      ++spare;
      EXPECT_EQ(r.diverted, "NOTE 550 gone");
      EXPECT_EQ(r.origin, Origin::received);
    } else {
      EXPECT_TRUE(r.diverted.empty());
    }
  }
  EXPECT_EQ(spare, 1);
  EXPECT_EQ(policy.diverted_calls, 1);
  EXPECT_EQ(policy.failed_calls, 1);
}

}  // namespace
}  // namespace hikyaku::queue
