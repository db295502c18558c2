#include "policy/fallback.hpp"

#include <gtest/gtest.h>

#include "mail/dsn.hpp"
#include "policy/loop.hpp"

namespace hikyaku::policy {
namespace {
using namespace std::chrono_literals;
using mail::Target;
using queue::DeliveryOutcome;

config::LoadResult load(const std::string& body) {
  std::string text = R"(
hostname = "mx.example.test"
[[domain]]
name = "example.test"
[[mailbox]]
name = "ituki"
[[mailbox]]
name = "ituki-gm"
[[mailbox]]
name = "other"
)" + body;
  return config::load_config_text(text, "t.toml", "/tmp");
}

Target mailbox(std::string n) { return Target{Target::Kind::mailbox, std::move(n)}; }
Target forward(std::string n) { return Target{Target::Kind::forward, std::move(n)}; }

// Records what the policy asks to send.
struct FakeReports final : Reports {
  std::vector<NoticeFacts> notices;
  std::vector<DsnFacts> dsns;
  void notice(const queue::SpooledMessage&, const NoticeFacts& f) override { notices.push_back(f); }
  void dsn(const queue::SpooledMessage&, const DsnFacts& f) override { dsns.push_back(f); }
};

queue::TargetState slot(Target planned, unsigned link = 0, std::optional<Target> current = std::nullopt) {
  queue::TargetState s;
  s.recipient = "ituki@example.test";
  s.planned = planned;
  s.target = current.value_or(planned);
  s.link = link;
  return s;
}

queue::SpooledMessage received(bool null_sender = false) {
  queue::SpooledMessage m;
  m.id = "q1";
  if (!null_sender) m.envelope.sender = mail::Address{"someone", "sender.test"};
  return m;
}

DeliveryOutcome refused() { return {DeliveryOutcome::Kind::permanent, "5.7.1", "550 5.7.1 no thanks"}; }
DeliveryOutcome deferred() { return {DeliveryOutcome::Kind::temporary, "4.7.0", "451 4.7.0 later"}; }

const char* kHidden = R"(
[[forward]]
to = "ituki-ex@gmail.test"
fallback = ["mailbox:ituki-gm"]
defer_limit = "10m"
notify = true
)";

TEST(ForwardConfig, ChainCycleIsReportedWithPosition) {
  auto r = load(R"(
[[forward]]
to = "a@gmail.test"
hidden = false
fallback = ["forward:b@gmail.test"]

[[forward]]
to = "b@gmail.test"
hidden = false
fallback = ["forward:a@gmail.test"]
)");
  ASSERT_FALSE(r.config);
  bool found = false;
  for (const auto& e : r.errors) {
    if (e.message.find("cycles") != std::string::npos) {
      found = true;
      EXPECT_EQ(e.where, "t.toml:20:13") << e.str();
      EXPECT_NE(e.message.find("b@gmail.test -> a@gmail.test"), std::string::npos) << e.message;
    }
  }
  EXPECT_TRUE(found);
}

TEST(ForwardConfig, SelfCycleIsReported) {
  auto r = load(R"(
[[forward]]
to = "a@gmail.test"
fallback = ["forward:a@gmail.test", "mailbox:ituki-gm"]
)");
  ASSERT_FALSE(r.config);
  EXPECT_NE(r.errors[0].message.find("cycles"), std::string::npos);
}

TEST(ForwardConfig, FallbackForwardWithoutTableGetsDefaults) {
  auto r = load(R"(
[[forward]]
to = "a@gmail.test"
fallback = ["forward:b@gmail.test", "mailbox:ituki-gm"]
)");
  ASSERT_TRUE(r.config) << r.errors[0].str();
  const auto* b = r.config->find_forward("b@gmail.test");
  ASSERT_NE(b, nullptr);
  EXPECT_TRUE(b->hidden);
  EXPECT_EQ(b->defer_limit, 900s);
  EXPECT_FALSE(b->notify);
  EXPECT_TRUE(b->fallback.empty());
}

TEST(ForwardFallback, ChainsExpandDepthFirst) {
  auto r = load(R"(
[[forward]]
to = "a@gmail.test"
fallback = ["forward:b@gmail.test", "mailbox:ituki-gm"]
[[forward]]
to = "b@gmail.test"
hidden = false
fallback = ["mailbox:other"]
)");
  ASSERT_TRUE(r.config) << r.errors[0].str();
  auto chain = fallback_chain(*r.config, forward("a@gmail.test"));
  ASSERT_EQ(chain.size(), 3u);
  EXPECT_EQ(chain[0].str(), "forward:b@gmail.test");
  EXPECT_EQ(chain[1].str(), "mailbox:other");
  EXPECT_EQ(chain[2].str(), "mailbox:ituki-gm");
  EXPECT_TRUE(fallback_chain(*r.config, mailbox("ituki")).empty());
  EXPECT_TRUE(fallback_chain(*r.config, forward("plain@x.test")).empty());
}

TEST(ForwardFallback, PermanentFailureDivertsToNextLinkWithNote) {
  auto r = load(kHidden);
  ASSERT_TRUE(r.config);
  ForwardFallback p(*r.config, nullptr);
  auto now = std::chrono::system_clock::from_time_t(1700000000);
  auto d = p.divert(received(), slot(forward("ituki-ex@gmail.test")), refused(), now);
  ASSERT_TRUE(d);
  EXPECT_EQ(d->target.str(), "mailbox:ituki-gm");
  EXPECT_EQ(d->note, "Tue, 14 Nov 2023 22:13:20 +0000; reason=\"550 5.7.1 no thanks\"");
  // The mailbox is the last link: nothing after it.
  EXPECT_FALSE(p.divert(received(), slot(forward("ituki-ex@gmail.test"), 1, mailbox("ituki-gm")), refused(), now));
}

TEST(ForwardFallback, GeneratedMessagesAreNeverDiverted) {
  auto r = load(kHidden);
  ForwardFallback p(*r.config, nullptr);
  auto m = received(true);
  m.origin = queue::Origin::notice;
  EXPECT_FALSE(p.divert(m, slot(forward("ituki-ex@gmail.test")), refused(), {}));
  m.origin = queue::Origin::dsn;
  EXPECT_FALSE(p.divert(m, slot(forward("ituki-ex@gmail.test")), refused(), {}));
}

TEST(ForwardFallback, DeferLimitFromFirstAttempt) {
  auto r = load(kHidden);
  ForwardFallback p(*r.config, nullptr);
  auto t0 = std::chrono::system_clock::from_time_t(1700000000);
  auto s = slot(forward("ituki-ex@gmail.test"));
  EXPECT_FALSE(p.should_divert(received(), s, t0));  // never attempted
  s.first_attempt = t0;
  EXPECT_FALSE(p.should_divert(received(), s, t0 + 9min));
  EXPECT_TRUE(p.should_divert(received(), s, t0 + 10min));
  ASSERT_TRUE(p.deadline(received(), s));
  EXPECT_EQ(*p.deadline(received(), s), t0 + 10min);
  // A forward with nowhere to go waits for [delivery] expire instead.
  auto plain = slot(forward("plain@gmail.test"));
  plain.first_attempt = t0;
  EXPECT_FALSE(p.should_divert(received(), plain, t0 + 1h));
  EXPECT_FALSE(p.deadline(received(), plain));
  // A notice is dropped at the forward's defer limit.
  auto n = received(true);
  n.origin = queue::Origin::notice;
  EXPECT_TRUE(p.should_divert(n, s, t0 + 10min));
}

TEST(ForwardFallback, NoticeOnlyWhenNotifyAndNotForGeneratedMail) {
  auto r = load(kHidden);
  FakeReports reports;
  ForwardFallback p(*r.config, &reports);
  auto from = slot(forward("ituki-ex@gmail.test"));
  auto to = slot(forward("ituki-ex@gmail.test"), 1, mailbox("ituki-gm"));
  p.diverted(received(), from, to, refused());
  ASSERT_EQ(reports.notices.size(), 1u);
  EXPECT_EQ(reports.notices[0].forward_to, "ituki-ex@gmail.test");
  EXPECT_EQ(reports.notices[0].recipient, "ituki@example.test");
  EXPECT_EQ(reports.notices[0].holder, "mailbox ituki-gm");
  EXPECT_EQ(reports.notices[0].reply, "550 5.7.1 no thanks");
  auto n = received(true);
  n.origin = queue::Origin::notice;
  p.diverted(n, from, to, refused());
  EXPECT_EQ(reports.notices.size(), 1u);
}

TEST(ForwardFallback, HiddenNeverProducesDsn) {
  auto r = load(kHidden);
  FakeReports reports;
  ForwardFallback p(*r.config, &reports);
  p.failed(received(), slot(forward("ituki-ex@gmail.test"), 1, mailbox("ituki-gm")), refused());
  EXPECT_TRUE(reports.dsns.empty());
}

TEST(ForwardFallback, NonHiddenFailureDsnUnlessNullSenderOrGenerated) {
  auto r = load(std::string(kHidden) + R"(
[[forward]]
to = "open@gmail.test"
hidden = false
)");
  ASSERT_TRUE(r.config) << r.errors[0].str();
  FakeReports reports;
  ForwardFallback p(*r.config, &reports);
  DeliveryOutcome o{DeliveryOutcome::Kind::permanent, "5.1.1", "550 5.1.1 <ituki-ex@gmail.test> unknown"};
  p.failed(received(), slot(forward("open@gmail.test")), o);
  ASSERT_EQ(reports.dsns.size(), 1u);
  EXPECT_EQ(reports.dsns[0].recipient, "ituki@example.test");
  EXPECT_EQ(reports.dsns[0].reply, "550 5.1.1 <<hidden>> unknown");  // redacted
  EXPECT_FALSE(reports.dsns[0].expired);
  p.failed(received(true), slot(forward("open@gmail.test")), o);  // null sender
  auto d = received();
  d.origin = queue::Origin::dsn;
  p.failed(d, slot(forward("open@gmail.test")), o);  // no DSN about a DSN
  p.failed(received(), slot(mailbox("ituki")), o);   // local mailbox
  EXPECT_EQ(reports.dsns.size(), 1u);
  // Plain forwards without a table are not hidden either.
  p.failed(received(), slot(forward("plain@gmail.test")), deferred());
  ASSERT_EQ(reports.dsns.size(), 2u);
  EXPECT_TRUE(reports.dsns[1].expired);
}

TEST(ForwardFallback, DescribeAndRedactHideHiddenForwards) {
  auto r = load(kHidden);
  ForwardFallback p(*r.config, nullptr);
  EXPECT_EQ(p.describe(forward("ituki-ex@gmail.test")), "forward:<hidden>");
  EXPECT_EQ(p.describe(forward("plain@gmail.test")), "forward:plain@gmail.test");
  EXPECT_EQ(p.describe(mailbox("ituki")), "mailbox:ituki");
  EXPECT_EQ(p.redact("550 <ITUKI-EX@gmail.test> no"), "550 <<hidden>> no");
}

TEST(DivertedNote, OneLineQuotedEscaped) {
  auto t = std::chrono::system_clock::from_time_t(0);
  EXPECT_EQ(diverted_note(t, "550-5.7.1 first\r\n550 5.7.1 \"second\" \\ \x01\xff"),
            "Thu, 01 Jan 1970 00:00:00 +0000; reason=\"550-5.7.1 first 550 5.7.1 \\\"second\\\" \\\\ ??\"");
  std::string long_reply(2000, 'x');
  auto note = diverted_note(t, long_reply);
  EXPECT_LT(note.size(), 500u);
  EXPECT_EQ(note.find('\n'), std::string::npos);
}

TEST(ReplyText, PrefersTheRemoteReply) {
  EXPECT_EQ(reply_text({DeliveryOutcome::Kind::permanent, "5.7.1", "550 5.7.1 x"}), "550 5.7.1 x");
  EXPECT_EQ(reply_text({DeliveryOutcome::Kind::temporary, "4.4.1", "connect refused"}), "4.4.1 connect refused");
}

TEST(Loop, ForwardedForOrDeliveredToNamingTheRecipientIsALoop) {
  auto r = load(kHidden);
  queue::DeliveryRequest req;
  req.recipient = "ituki@example.test";
  req.target = forward("ituki-ex@gmail.test");
  EXPECT_FALSE(loop_reason(*r.config, "Subject: x\r\n", req));
  EXPECT_TRUE(loop_reason(*r.config, "X-Hikyaku-Forwarded-For: <ITUKI@example.test>\r\n", req));
  EXPECT_TRUE(loop_reason(*r.config, "Delivered-To: ituki@example.test\r\n", req));
  EXPECT_FALSE(loop_reason(*r.config, "Delivered-To: someone@example.test\r\n", req));
  req.target = forward("bob@example.test");  // a local domain routes back to us
  EXPECT_TRUE(loop_reason(*r.config, "", req));
  req.origin = queue::Origin::notice;
  EXPECT_FALSE(loop_reason(*r.config, "", req));
}

TEST(Loop, ForwardHeadersPlacement) {
  queue::DeliveryRequest req;
  req.recipient = "ituki@example.test";
  req.target = forward("ituki-ex@gmail.test");
  std::string msg = "Received: from a\r\n\tby b; date\r\nSubject: x\r\n\r\nbody\r\n";
  EXPECT_EQ(add_forward_headers(req, msg),
            "Received: from a\r\n\tby b; date\r\nX-Hikyaku-Forwarded-For: <ituki@example.test>\r\n"
            "Subject: x\r\n\r\nbody\r\n");
  req.diverted = "D; reason=\"r\"";
  EXPECT_TRUE(add_forward_headers(req, msg).starts_with("X-Hikyaku-Diverted: D; reason=\"r\"\r\nReceived:"));
  req.origin = queue::Origin::dsn;
  req.diverted.clear();
  EXPECT_EQ(add_forward_headers(req, msg), msg);
}

}  // namespace
}  // namespace hikyaku::policy
