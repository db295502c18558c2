// SmtpAgent: what it reports before any connection (the loop check, the
// route's failures) and on shutdown. The route itself is tested in
// src/smtp/client/route_test.cpp; the Asio conversation by
// tests/integration/test_smtp_client.py against real far sides.
#include "delivery/smtp_agent.hpp"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "dns/fake_resolver.hpp"
#include "net/asio.hpp"

namespace hikyaku::delivery {
namespace {

using policy::AttemptResult;

class SmtpAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("hk-agent-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    auto r = config::load_config_text(R"(
hostname = "mx.example.test"
[[domain]]
name = "example.test"
[[mailbox]]
name = "me"
)",
                                      "t.toml", dir_);
    ASSERT_TRUE(r.config) << r.errors.at(0).str();
    config_ = *r.config;
    zone_.add_mx("gmail.test", 10, "mx.gmail.test");
    zone_.add_a("mx.gmail.test", "127.0.0.2");
    rules_ = std::make_unique<base::Live<policy::Rules>>(policy::Rules::create(config_));
    auto agent = SmtpAgent::create(*rules_, io_, pool_, zone_, nullptr);
    ASSERT_TRUE(agent.ok());
    agent_ = std::move(agent).value();
    envelope_.sender = mail::Address{"s", "example.org"};
    request_.queue_id = "Q1";
    request_.envelope = &envelope_;
    request_.recipient = "me@example.test";
    request_.target = mail::Target{mail::Target::Kind::forward, "me@gmail.test"};
    set_message("Received: from x by mx.example.test; date\r\nSubject: t\r\n\r\nx\r\n");
  }
  void TearDown() override {
    agent_->stop();
    pool_.join();
    std::filesystem::remove_all(dir_);
  }
  void set_message(std::string m) {
    request_.message = std::make_shared<const mail::Message>(mail::Message{std::move(m), std::nullopt});
    request_.message_size = request_.message->size();
  }
  // deliver(), and the results reported so far.
  std::vector<AttemptResult> deliver() {
    agent_->deliver(request_, [this](AttemptResult r) { results_.push_back(std::move(r)); });
    return results_;
  }

  std::filesystem::path dir_;
  config::Config config_;
  std::unique_ptr<base::Live<policy::Rules>> rules_;
  dns::FakeResolver zone_;
  boost::asio::io_context io_;
  boost::asio::thread_pool pool_{1};
  std::unique_ptr<SmtpAgent> agent_;
  mail::Envelope envelope_;
  queue::DeliveryRequest request_;
  std::vector<AttemptResult> results_;
};

// RFC 5321 §6.3: a message that already passed through here for this
// recipient is not forwarded again: 5.4.6, cause loop, before any lookup.
TEST_F(SmtpAgentTest, LoopIsReportedBeforeAnyLookup_RFC5321_6_3) {
  set_message("Received: from x by y; d\r\nX-Hikyaku-Forwarded-For: <me@example.test>\r\n\r\nx\r\n");
  auto got = deliver();
  ASSERT_EQ(got.size(), 1u) << "reported within deliver(): nothing was sent";
  EXPECT_EQ(got[0].kind, AttemptResult::Kind::permanent);
  EXPECT_EQ(got[0].status, "5.4.6");
  EXPECT_EQ(got[0].cause, AttemptResult::Cause::loop);
  EXPECT_EQ(zone_.queries(), 0);
  // The field this version writes (issue 17) is recognised the same way.
  set_message("Received: from x by y; d\r\nX-Forwarded-For: me@example.test\r\n\r\nx\r\n");
  got = deliver();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].cause, AttemptResult::Cause::loop);
  results_.clear();
  // A forward into one of our own domains would loop too.
  request_.target.value = "someone@example.test";
  set_message("Subject: t\r\n\r\nx\r\n");
  got = deliver();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].cause, AttemptResult::Cause::loop);
}

// RFC 5321 §5.1: a domain that does not exist fails for good (5.1.2).
TEST_F(SmtpAgentTest, RouteFailureIsReportedWithoutConnecting_RFC5321_5_1) {
  request_.target.value = "me@nowhere.test";
  auto got = deliver();
  EXPECT_TRUE(got.empty()) << "the route is decided on the event loop";
  io_.poll();  // the decision runs; the fake resolver answers at once
  got = results_;
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].kind, AttemptResult::Kind::permanent);
  EXPECT_EQ(got[0].status, "5.1.2");
  EXPECT_EQ(got[0].cause, AttemptResult::Cause::reply);
}

// A delivery whose event-loop steps never ran (the io_context stopped
// first) is reported as interrupted by stop(), exactly once.
TEST_F(SmtpAgentTest, StopReportsAnInterruptedConversationOnce) {
  auto got = deliver();
  EXPECT_TRUE(got.empty()) << "the conversation reports later, on the io_context";
  agent_->stop();
  ASSERT_EQ(results_.size(), 1u);
  EXPECT_EQ(results_[0].kind, AttemptResult::Kind::temporary);
  EXPECT_EQ(results_[0].status, "4.3.2");
  agent_->stop();
  EXPECT_EQ(results_.size(), 1u);
  // A delivery asked for after stop() (a queue thread still running) is
  // answered at once: its steps would never run on the stopped io_context.
  got = deliver();
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].status, "4.3.2");
  EXPECT_EQ(got[1].kind, AttemptResult::Kind::temporary);
}

}  // namespace
}  // namespace hikyaku::delivery
