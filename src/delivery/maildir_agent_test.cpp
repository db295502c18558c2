#include "delivery/maildir_agent.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "mailbox/maildir.hpp"
#include "queue/spool.hpp"

namespace hikyaku::delivery {
namespace {
namespace fs = std::filesystem;
using policy::AttemptResult;

class MaildirAgentTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/maildir_agent_test.XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    config_.data_dir = tmpl;
    config_.mailboxes = {config::Mailbox{"alice", {}}};
    spool_ = std::make_unique<queue::Spool>(config_.spool_dir(), clock_, false);
    ASSERT_TRUE(spool_->create());
  }
  void TearDown() override { fs::remove_all(config_.data_dir); }

  AttemptResult run(const std::string& mailbox_name, const std::string& message, MaildirAgent* with = nullptr,
                    const std::string& diverted = "") {
    mail::Envelope env;
    env.sender = mail::Address{"s", "example.org"};
    env.recipients = {mail::Address{"alice", "example.test"}};
    mail::Target target{mail::Target::Kind::mailbox, mailbox_name};
    auto id = spool_->enqueue(env, {{"alice@example.test", {target}}}, message);
    EXPECT_TRUE(id);
    auto m = spool_->load(*id);
    EXPECT_TRUE(m);
    queue::DeliveryRequest req{*id, &m->envelope, m->path, m->message_offset, m->message_size,
                               "alice@example.test", target};
    req.diverted = diverted;
    AttemptResult got;
    int calls = 0;
    auto settings = MaildirAgent::Settings::from(config_);
    settings.sync = false;
    MaildirAgent own(std::move(settings));
    MaildirAgent& agent = with != nullptr ? *with : own;
    agent.deliver(req, [&](AttemptResult o) {
      got = std::move(o);
      ++calls;
    });
    EXPECT_EQ(calls, 1) << "done must be called exactly once";
    return got;
  }

  config::Config config_;
  base::FakeClock clock_{base::Clock::time_point(std::chrono::seconds(1700000000))};
  std::unique_ptr<queue::Spool> spool_;
};

TEST_F(MaildirAgentTest, DeliversWithReturnPathInLfForm) {
  auto o = run("alice", "Subject: hi\r\n\r\nbody\r\n");
  EXPECT_EQ(o.kind, AttemptResult::Kind::delivered) << o.detail;
  EXPECT_EQ(o.status, "2.0.0");
  mailbox::Maildir md(config_.mailbox_dir("alice"));
  auto list = md.list();
  ASSERT_TRUE(list);
  ASSERT_EQ(list->size(), 1u);
  auto body = md.read((*list)[0]);
  ASSERT_TRUE(body);
  EXPECT_EQ(*body,
            "Return-Path: <s@example.org>\nDelivered-To: alice@example.test\nSubject: hi\n\nbody\n");
}

// A diverted copy leaves a spare file in the mailbox's tmp/ for the next
// one (mailbox::Maildir::Spare), which the next diverted copy uses and
// replaces; an ordinary delivery leaves tmp/ empty. The agent's end
// removes the spare.
TEST_F(MaildirAgentTest, ADivertedCopyLeavesASpareForTheNext) {
  const fs::path tmp = config_.mailbox_dir("alice") / "tmp";
  auto count = [](const fs::path& dir) { return std::distance(fs::directory_iterator(dir), fs::directory_iterator()); };
  {
    MaildirAgent agent(MaildirAgent::Settings::from(config_));
    EXPECT_EQ(run("alice", "Subject: 1\r\n\r\nx\r\n", &agent).kind, AttemptResult::Kind::delivered);
    EXPECT_EQ(count(tmp), 0) << "an ordinary delivery makes no spare";
    const std::string why = "2026-12-07 refused by forward:<hidden>";
    EXPECT_EQ(run("alice", "Subject: 2\r\n\r\nx\r\n", &agent, why).kind, AttemptResult::Kind::delivered);
    ASSERT_EQ(count(tmp), 1) << "a spare after a diverted copy";
    const std::string spare = fs::directory_iterator(tmp)->path().filename();
    EXPECT_EQ(run("alice", "Subject: 3\r\n\r\nx\r\n", &agent, why).kind, AttemptResult::Kind::delivered);
    ASSERT_EQ(count(tmp), 1);
    EXPECT_NE(fs::directory_iterator(tmp)->path().filename(), spare) << "the spare was used and replaced";
    mailbox::Maildir md(config_.mailbox_dir("alice"));
    auto list = md.list();
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 3u);
    auto body = md.read((*list)[2]);
    ASSERT_TRUE(body);
    EXPECT_EQ(*body, "Return-Path: <s@example.org>\nDelivered-To: alice@example.test\nX-Hikyaku-Diverted: " + why +
                         "\nSubject: 3\n\nx\n");
  }
  EXPECT_EQ(count(tmp), 0) << "the agent's end removes its spares";
}

// A mailbox the configuration no longer has (removed before a restart)
// still takes the mail queued for it: delivered into its Maildir, never
// failed (nor, behind a hidden forward, dropped).
TEST_F(MaildirAgentTest, AMailboxNoLongerConfiguredStillTakesItsMail) {
  auto o = run("removed", "Subject: queued before\r\n\r\nbody\r\n");
  EXPECT_EQ(o.kind, AttemptResult::Kind::delivered) << o.detail;
  mailbox::Maildir md(config_.mailbox_dir("removed"));
  auto list = md.list();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 1u);
}

// A name that is not a mailbox name (a damaged plan) writes nothing, and
// nowhere outside DATA_DIR/mailboxes.
TEST_F(MaildirAgentTest, AnInvalidMailboxNameIsPermanent) {
  for (const std::string name : {"../escape", ".hidden", "a/b", ""}) {
    auto o = run(name, "x\r\n");
    EXPECT_EQ(o.kind, AttemptResult::Kind::permanent) << name;
    EXPECT_EQ(o.status, "5.1.1") << name;
  }
  EXPECT_FALSE(fs::exists(config_.data_dir / "escape"));
  EXPECT_FALSE(fs::exists(config_.mailbox_dir(".hidden")));
}

TEST_F(MaildirAgentTest, UnwritableMailboxIsTemporary) {
  // DATA_DIR/mailboxes is a file: every mkdir fails (ENOTDIR), even as root.
  std::ofstream(config_.data_dir / "mailboxes") << "in the way";
  auto o = run("alice", "x\r\n");
  EXPECT_EQ(o.kind, AttemptResult::Kind::temporary) << o.detail;
  EXPECT_EQ(o.status, "4.3.0");
}

// Issue 15 item 5: a message that would take the mailbox over its quota is
// not written, and the queue retries it (4.2.2); the usage is kept in
// maildirsize, which the agent creates.
TEST_F(MaildirAgentTest, OverQuotaIsTemporaryAndWritesNothing) {
  config_.mailboxes[0].quota = 200;
  auto first = run("alice", "Subject: hi\r\n\r\n" + std::string(80, 'a') + "\r\n");
  ASSERT_EQ(first.kind, AttemptResult::Kind::delivered) << first.detail;
  auto second = run("alice", "Subject: hi\r\n\r\n" + std::string(80, 'b') + "\r\n");
  EXPECT_EQ(second.kind, AttemptResult::Kind::temporary) << second.detail;
  EXPECT_EQ(second.status, "4.2.2");
  EXPECT_NE(second.detail.find("over its quota"), std::string::npos) << second.detail;
  mailbox::Maildir md(config_.mailbox_dir("alice"));
  auto list = md.list();
  ASSERT_TRUE(list);
  EXPECT_EQ(list->size(), 1u);
  EXPECT_TRUE(fs::exists(config_.mailbox_dir("alice") / "maildirsize"));
  // Room again once the first message has gone.
  ASSERT_TRUE(md.remove((*list)[0]));
  EXPECT_EQ(run("alice", "Subject: hi\r\n\r\nc\r\n").kind, AttemptResult::Kind::delivered);
}

}  // namespace
}  // namespace hikyaku::delivery
