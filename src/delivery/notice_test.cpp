#include "delivery/notice.hpp"

#include <unistd.h>

#include <filesystem>

#include <gtest/gtest.h>

#include "base/clock.hpp"

namespace hikyaku::delivery {
namespace {

NoticeInput sample() {
  NoticeInput in;
  in.hostname = "mx.example.test";
  in.from_domain = "example.test";
  in.facts.forward_to = "ituki-ex@gmail.test";
  in.facts.recipient = "ituki@example.test";
  in.facts.reply = "552 5.7.0 blocked\r\nInjected: header";
  in.facts.holder = "mailbox ituki-gm";
  in.facts.when = std::chrono::system_clock::from_time_t(1700000000);
  in.original_headers =
      "From: Someone <someone@sender.test>\r\nSubject: Invoice\r\n\tpart two\r\n"
      "Date: Mon, 1 Jan 2024 00:00:00 +0000\r\nMessage-ID: <m1@sender.test>\r\nX-Other: nope\r\n";
  in.id_seed = "q1.5";
  return in;
}

TEST(Notice, HeadersAndFacts) {
  std::string n = build_notice(sample());
  EXPECT_TRUE(n.starts_with("From: hikyaku <postmaster@example.test>\r\nTo: <ituki-ex@gmail.test>\r\n"));
  EXPECT_NE(n.find("Subject: Diverted: a message for ituki@example.test is in mailbox ituki-gm\r\n"),
            std::string::npos);
  EXPECT_NE(n.find("Auto-Submitted: auto-generated\r\n"), std::string::npos);
  EXPECT_NE(n.find("  From:       Someone <someone@sender.test>\r\n"), std::string::npos);
  EXPECT_NE(n.find("  Subject:    Invoice part two\r\n"), std::string::npos);
  EXPECT_NE(n.find("  Date:       Mon, 1 Jan 2024 00:00:00 +0000\r\n"), std::string::npos);
  EXPECT_NE(n.find("  Message-ID: <m1@sender.test>\r\n"), std::string::npos);
  // The remote reply stays on one line: it cannot inject a header or line.
  EXPECT_NE(n.find("  Reason:     552 5.7.0 blocked Injected: header\r\n"), std::string::npos);
  EXPECT_EQ(n.find("\r\nInjected:"), std::string::npos);
  EXPECT_EQ(n.find("X-Other"), std::string::npos);
}

TEST(Reporter, QueuesNoticeAndDsnAsGeneratedMessages) {
  char tmpl[] = "/tmp/notice_test.XXXXXX";
  ASSERT_NE(::mkdtemp(tmpl), nullptr);
  auto r = config::load_config_text(R"(
hostname = "mx.example.test"
[[domain]]
name = "example.test"
[[mailbox]]
name = "ituki"
[[mailbox]]
name = "ituki-gm"
[[address]]
address = "ituki@example.test"
deliver = ["mailbox:ituki", "forward:ituki-ex@gmail.test"]
[[forward]]
to = "ituki-ex@gmail.test"
fallback = ["mailbox:ituki-gm"]
)",
                                    "t.toml", tmpl);
  ASSERT_TRUE(r.config) << r.errors[0].str();
  base::SystemClock clock;
  queue::Spool spool(std::filesystem::path(tmpl) / "spool", clock, false);
  ASSERT_TRUE(spool.create());
  std::vector<std::string> submitted;
  Reporter reporter(*r.config, spool, [&](const std::string& id) { submitted.push_back(id); });

  mail::Envelope env;
  env.sender = mail::Address{"someone", "sender.test"};
  env.recipients.push_back(mail::Address{"ituki", "example.test"});
  queue::Plan plan{queue::RecipientPlan("ituki@example.test",
                                        {mail::Target{mail::Target::Kind::forward, "ituki-ex@gmail.test"}})};
  auto id = spool.enqueue(env, plan, "Subject: s\r\nMessage-ID: <x@y>\r\n\r\nSECRET BODY\r\n");
  ASSERT_TRUE(id);
  auto original = spool.load(*id);
  ASSERT_TRUE(original);

  policy::NoticeFacts facts;
  facts.forward_to = "ituki-ex@gmail.test";
  facts.recipient = "ituki@example.test";
  facts.reply = "550 5.7.1 no";
  facts.holder = "mailbox ituki-gm";
  reporter.notice(*original, facts);
  ASSERT_EQ(submitted.size(), 1u);
  auto notice = spool.load(submitted[0]);
  ASSERT_TRUE(notice);
  EXPECT_EQ(notice->origin, queue::Origin::notice);
  EXPECT_FALSE(notice->envelope.sender);  // null reverse-path
  EXPECT_EQ(notice->targets[0].recipient, "ituki@example.test");  // logs never name the owner
  EXPECT_EQ(notice->targets[0].target.str(), "forward:ituki-ex@gmail.test");
  auto text = spool.read_message(*notice);
  ASSERT_TRUE(text);
  EXPECT_EQ(text->find("SECRET BODY"), std::string::npos);

  policy::DsnFacts dsn;
  dsn.recipient = "ituki@example.test";
  dsn.status = "5.7.1";
  dsn.reply = "550 5.7.1 no";
  reporter.dsn(*original, dsn);
  ASSERT_EQ(submitted.size(), 2u);
  auto d = spool.load(submitted[1]);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->origin, queue::Origin::dsn);
  EXPECT_FALSE(d->envelope.sender);
  EXPECT_EQ(d->targets[0].target.str(), "forward:someone@sender.test");
  auto dtext = spool.read_message(*d);
  ASSERT_TRUE(dtext);
  EXPECT_EQ(dtext->find("ituki-ex@gmail.test"), std::string::npos);

  // A local sender gets the DSN in its mailbox; an unknown local one gets none.
  EXPECT_EQ(reporter.dsn_targets("ituki@example.test").size(), 1u);
  EXPECT_EQ(reporter.dsn_targets("ituki@example.test")[0].str(), "mailbox:ituki");
  EXPECT_TRUE(reporter.dsn_targets("nobody@example.test").empty());
  std::filesystem::remove_all(tmpl);
}

}  // namespace
}  // namespace hikyaku::delivery
