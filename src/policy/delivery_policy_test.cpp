// The delivery contract, one case per row of docs/forwarding.md
// ("Outcomes", "Notices", "DSNs", "Loops") and DESIGN.md "Delivery
// semantics": decide() is pure, so every row is a table entry.
#include "policy/delivery_policy.hpp"

#include <gtest/gtest.h>

#include "mail/header.hpp"
#include "policy/forwards.hpp"

namespace hikyaku::policy {
namespace {
using namespace std::chrono_literals;
using mail::Target;
using Action = Disposition::Action;
using Kind = AttemptResult::Kind;
using Cause = AttemptResult::Cause;

const TimePoint kT0 = std::chrono::system_clock::from_time_t(1700000000);

const config::Config& config() {
  static const config::Config c = [] {
    auto r = config::load_config_text(R"(
hostname = "mx.example.test"
[delivery]
retry = ["1m", "5m"]
expire = "2d"
[[domain]]
name = "example.test"
[[mailbox]]
name = "ituki"
[[mailbox]]
name = "ituki-gm"
[[mailbox]]
name = "other"
[[forward]]
to = "ituki-ex@gmail.test"
fallback = ["forward:second@gmail.test", "mailbox:ituki-gm"]
defer_limit = "10m"
notify = true
[[forward]]
to = "second@gmail.test"
hidden = false
[[forward]]
to = "open@gmail.test"
hidden = false
[[forward]]
to = "open-chain@gmail.test"
hidden = false
fallback = ["mailbox:other"]
)",
                                      "t.toml", "/tmp");
    if (!r.config) throw std::runtime_error(r.errors.at(0).str());
    return *r.config;
  }();
  return c;
}

Target mailbox(std::string n) { return Target{Target::Kind::mailbox, std::move(n)}; }
Target forward(std::string n) { return Target{Target::Kind::forward, std::move(n)}; }

SlotState slot(Target planned, unsigned link = 0, std::optional<Target> current = std::nullopt,
               TimePoint first_attempt = {}, unsigned attempts = 0) {
  SlotState s;
  s.recipient = "ituki@example.test";
  s.planned = planned;
  s.target = current.value_or(planned);
  s.link = link;
  s.first_attempt = first_attempt;
  s.attempts = attempts;
  return s;
}

AttemptResult ok() { return {Kind::delivered, "2.0.0", "250 2.0.0 ok"}; }
AttemptResult refused() { return {Kind::permanent, "5.7.1", "550 5.7.1 no thanks <ITUKI-EX@gmail.test>"}; }
AttemptResult deferred() { return {Kind::temporary, "4.7.0", "451 4.7.0 later"}; }
AttemptResult looped() { return {Kind::permanent, "5.4.6", "message already passed through", Cause::loop}; }
AttemptResult dmarc() { return {Kind::permanent, "5.7.26", "would fail DMARC", Cause::dmarc_divert}; }
// The destination is paused until `until`: no connection was made.
AttemptResult paused(TimePoint until) {
  return {Kind::temporary, "4.4.5", "gmail.test is rate-limiting us: paused", Cause::rate_limited, until};
}
// The far side's own rate-limit reply; its destination pauses until `until`.
AttemptResult rate_reply(TimePoint until) {
  return {Kind::temporary, "4.7.28", "421 4.7.28 unusual rate", Cause::reply, until};
}

MessageFacts received() { return {Origin::received, false, kT0}; }
MessageFacts null_sender() { return {Origin::received, true, kT0}; }
MessageFacts submitted() { return {Origin::submitted, false, kT0}; }
MessageFacts notice() { return {Origin::notice, true, kT0}; }
MessageFacts dsn() { return {Origin::dsn, true, kT0}; }

struct Row {
  const char* name;
  MessageFacts message;
  SlotState slot;
  AttemptResult result;
  TimePoint now;
  Action want;
  std::string want_target = "";   // divert: the next link
  TimePoint want_retry{};          // retry: the next attempt (jitter 0)
  bool want_notice = false;
  bool want_dsn = false;
  std::string want_remark = "";
};

TEST(DeliveryPolicy, EveryRowOfTheContract) {
  const auto hidden = forward("ituki-ex@gmail.test");
  const std::vector<Row> rows = {
      // 2xx: done.
      {"2xx delivers", received(), slot(hidden), ok(), kT0, Action::delivered},
      {"2xx to a mailbox delivers", received(), slot(mailbox("ituki")), ok(), kT0, Action::delivered},
      // 5xx: the next link at once, with a notice when notify = true.
      {"5xx diverts to the next link", received(), slot(hidden), refused(), kT0, Action::divert,
       "forward:second@gmail.test", {}, true},
      {"5xx on a link without notify diverts silently", received(),
       slot(hidden, 1, forward("second@gmail.test")), refused(), kT0, Action::divert, "mailbox:ituki-gm"},
      {"loop (5.4.6) diverts at once", received(), slot(hidden), looped(), kT0, Action::divert,
       "forward:second@gmail.test", {}, true},
      {"DMARC divert (5.7.26) diverts at once", received(), slot(hidden), dmarc(), kT0, Action::divert,
       "forward:second@gmail.test", {}, true},
      // No next link, 5xx: failed; a DSN unless hidden, null sender or generated.
      {"5xx on the last link of a hidden chain fails, no DSN", received(),
       slot(hidden, 2, mailbox("ituki-gm")), refused(), kT0, Action::fail, "", {}, false, false,
       "hidden forward for <ituki@example.test> failed for good; no DSN"},
      {"5xx on a plain forward fails with a DSN", received(), slot(forward("open@gmail.test")), refused(), kT0,
       Action::fail, "", {}, false, true},
      {"5xx on a plain forward with a null sender: no DSN", null_sender(), slot(forward("open@gmail.test")),
       refused(), kT0, Action::fail, "", {}, false, false, "no DSN to the null sender about <ituki@example.test>"},
      {"5xx on a local mailbox fails without a DSN", received(), slot(mailbox("ituki")), refused(), kT0,
       Action::fail},
      {"5xx on a non-hidden chain's mailbox fails with a DSN", received(),
       slot(forward("open-chain@gmail.test"), 1, mailbox("other")), refused(), kT0, Action::fail, "", {}, false,
       true},
      // 4xx: retry on [delivery] retry, never after the defer deadline.
      {"4xx retries after the first interval", received(), slot(hidden), deferred(), kT0, Action::retry, "",
       kT0 + 1min},
      {"4xx retries after the k-th interval, then the last", received(), slot(hidden, 0, {}, kT0, 3), deferred(),
       kT0 + 2min, Action::retry, "", kT0 + 2min + 5min},
      {"a retry is moved back to the defer deadline", received(), slot(hidden, 0, {}, kT0, 1), deferred(),
       kT0 + 8min, Action::retry, "", kT0 + 10min},
      {"a paused destination: retried when the pause ends, not an attempt", received(),
       slot(hidden, 0, {}, kT0, 1), paused(kT0 + 5min), kT0, Action::retry, "", kT0 + 5min},
      {"a pause shorter than the retry interval: the interval", received(), slot(hidden, 0, {}, kT0, 1),
       paused(kT0 + 10s), kT0, Action::retry, "", kT0 + 1min},
      {"a pause ending after the defer deadline: retried at the deadline", received(),
       slot(hidden, 0, {}, kT0, 1), paused(kT0 + 30min), kT0 + 2min, Action::retry, "", kT0 + 10min},
      {"still paused at the defer deadline: diverts", received(), slot(hidden, 0, {}, kT0, 1),
       paused(kT0 + 30min), kT0 + 10min, Action::divert, "forward:second@gmail.test", {}, true},
      {"a rate-limit reply: an attempt, retried after its destination's pause", received(),
       slot(forward("open@gmail.test")), rate_reply(kT0 + 20min), kT0, Action::retry, "", kT0 + 20min},
      {"4xx at the defer deadline diverts", received(), slot(hidden, 0, {}, kT0, 4), deferred(), kT0 + 10min,
       Action::divert, "forward:second@gmail.test", {}, true},
      // No next link, 4xx: retried until expire, then failed ("expired").
      {"4xx without a next link waits past defer_limit", received(), slot(forward("open@gmail.test"), 0, {}, kT0, 5),
       deferred(), kT0 + 1h, Action::retry, "", kT0 + 1h + 5min},
      {"4xx without a next link at expire fails with a DSN", received(),
       slot(forward("open@gmail.test"), 0, {}, kT0, 9), deferred(), kT0 + 48h, Action::fail, "", {}, false, true},
      {"4xx to a mailbox at expire fails", received(), slot(mailbox("ituki"), 0, {}, kT0, 9), deferred(), kT0 + 48h,
       Action::fail},
      // ...except a hidden path's mailbox (over quota, say): no sender may be
      // told and there is nowhere else to go, so it keeps waiting.
      {"4xx at a hidden path's mailbox past expire keeps waiting", received(),
       slot(hidden, 2, mailbox("ituki-gm"), kT0, 9), deferred(), kT0 + 48h, Action::retry, "", kT0 + 48h + 5min,
       false, false,
       "a hidden forward's copy for <ituki@example.test> is past [delivery] expire and still waits for "
       "mailbox:ituki-gm (nowhere else to go; no DSN): see `hikyaku queue list`"},
      // Submitted mail (issue 13): a refused remote recipient brings a DSN
      // (to the author's own mailbox, reports.hpp); a local forward it
      // reaches diverts like received mail, without the owner's notice.
      {"5xx on a submitted message's recipient fails with a DSN", submitted(), slot(forward("friend@else.test")),
       refused(), kT0, Action::fail, "", {}, false, true},
      {"4xx on a submitted message's recipient at expire fails with a DSN", submitted(),
       slot(forward("friend@else.test"), 0, {}, kT0, 9), deferred(), kT0 + 48h, Action::fail, "", {}, false, true},
      {"5xx on a forward a submitted message reached diverts, no notice", submitted(), slot(hidden), refused(), kT0,
       Action::divert, "forward:second@gmail.test"},
      // Generated messages: never diverted, never bounced.
      {"a refused notice is dropped", notice(), slot(hidden), refused(), kT0, Action::fail, "", {}, false, false,
       "notice to forward:<hidden> not delivered, dropped"},
      {"a deferred notice retries", notice(), slot(hidden), deferred(), kT0, Action::retry, "", kT0 + 1min},
      {"a deferred notice is dropped at its forward's defer_limit", notice(), slot(hidden, 0, {}, kT0, 2),
       deferred(), kT0 + 10min, Action::fail, "", {}, false, false, "notice to forward:<hidden> not delivered, dropped"},
      {"a refused DSN is dropped", dsn(), slot(forward("someone@sender.test")), refused(), kT0, Action::fail, "",
       {}, false, false, "DSN to <ituki@example.test> not delivered, dropped"},
      {"a deferred DSN retries until expire", dsn(), slot(forward("someone@sender.test"), 0, {}, kT0, 5), deferred(),
       kT0 + 47h, Action::retry, "", kT0 + 47h + 5min},
  };
  DeliveryPolicy policy(config());
  for (const auto& row : rows) {
    SCOPED_TRACE(row.name);
    auto d = policy.decide(row.message, row.slot, row.result, row.now, 0.0);
    EXPECT_EQ(static_cast<int>(d.action), static_cast<int>(row.want)) << "got " << d.word();
    const unsigned attempted = row.result.cause == Cause::rate_limited ? 0u : 1u;  // a pause: no connection
    EXPECT_EQ(d.next.attempts, row.want == Action::divert ? 0u : row.slot.attempts + attempted);
    if (row.want == Action::divert) {
      EXPECT_EQ(d.next.target.str(), row.want_target);
      EXPECT_EQ(d.next.link, row.slot.link + 1);
      EXPECT_EQ(d.next.status, SlotStatus::pending);
      EXPECT_EQ(d.next.first_attempt, TimePoint{});  // a fresh clock for the new link
      EXPECT_EQ(d.next.planned, row.slot.planned);
      EXPECT_TRUE(d.next.diverted.starts_with(mail::rfc5322_date(row.now))) << d.next.diverted;
      EXPECT_EQ(d.next.diverted.find("ituki-ex@gmail.test"), std::string::npos) << "hidden address leaked";
    }
    if (row.want == Action::retry) {
      EXPECT_EQ(d.next.next_attempt, row.want_retry);
      EXPECT_EQ(d.next.status, SlotStatus::pending);
    }
    if (row.want == Action::fail) {
      EXPECT_EQ(d.next.status, SlotStatus::failed);
    }
    if (row.want == Action::delivered) {
      EXPECT_EQ(d.next.status, SlotStatus::delivered);
    }
    EXPECT_EQ(d.notice.has_value(), row.want_notice);
    EXPECT_EQ(d.dsn.has_value(), row.want_dsn);
    EXPECT_EQ(d.remark, row.want_remark);
  }
}

// The messages a pause held back come back spread over `jitter` (10 %) of
// the pause, not all at its end.
TEST(DeliveryPolicy, RetriesAfterAPauseAreSpreadOverItsJitter) {
  DeliveryPolicy policy(config());
  const auto s = slot(forward("open@gmail.test"));
  EXPECT_EQ(policy.decide(received(), s, paused(kT0 + 10min), kT0, 0.0).next.next_attempt, kT0 + 10min);
  EXPECT_EQ(policy.decide(received(), s, paused(kT0 + 10min), kT0, 0.5).next.next_attempt, kT0 + 10min + 30s);
  EXPECT_EQ(policy.decide(received(), s, paused(kT0 + 10min), kT0, 1.0).next.next_attempt, kT0 + 11min);
}

TEST(DeliveryPolicy, NoticeStatesWhereTheMessageIsAndHidesOtherHiddenAddresses) {
  DeliveryPolicy policy(config());
  AttemptResult r{Kind::permanent, "5.7.1", "550 5.7.1 <ituki-ex@gmail.test> and <second@gmail.test>"};
  auto d = policy.decide(received(), slot(forward("ituki-ex@gmail.test")), r, kT0);
  ASSERT_TRUE(d.notice);
  EXPECT_EQ(d.notice->forward_to, "ituki-ex@gmail.test");
  EXPECT_EQ(d.notice->recipient, "ituki@example.test");
  // The owner may see their own address in the reply.
  EXPECT_EQ(d.notice->reply, "550 5.7.1 <ituki-ex@gmail.test> and <second@gmail.test>");
  EXPECT_EQ(d.notice->holder, "mailbox (if the next forward refuses it too) ituki-gm");
  EXPECT_EQ(d.notice->when, kT0);
}

TEST(DeliveryPolicy, DsnFactsAreRedactedAndSayWhetherExpired) {
  DeliveryPolicy policy(config());
  AttemptResult r{Kind::permanent, "5.1.1", "550 5.1.1 <ituki-ex@gmail.test> unknown"};
  auto d = policy.decide(received(), slot(forward("open@gmail.test")), r, kT0);
  ASSERT_TRUE(d.dsn);
  EXPECT_EQ(d.dsn->recipient, "ituki@example.test");
  EXPECT_EQ(d.dsn->reply, "550 5.1.1 <<hidden>> unknown");
  EXPECT_FALSE(d.dsn->expired);
  auto e = policy.decide(received(), slot(forward("open@gmail.test"), 0, {}, kT0, 3), deferred(), kT0 + 48h);
  ASSERT_TRUE(e.dsn);
  EXPECT_TRUE(e.dsn->expired);
  EXPECT_TRUE(e.next.last_reply.ends_with(" (expired)"));
}

TEST(DeliveryPolicy, JitterStretchesTheIntervalByAtMostItsFraction) {
  DeliveryPolicy policy(config(), 0.10);
  auto d = policy.decide(received(), slot(mailbox("ituki")), deferred(), kT0, 0.5);
  EXPECT_EQ(d.next.next_attempt, kT0 + 60s + 3s);
  auto e = policy.decide(received(), slot(mailbox("ituki")), deferred(), kT0, 0.999999);
  EXPECT_LT(e.next.next_attempt, kT0 + 66s);
}

TEST(DeliveryPolicy, DeadlineFromFirstAttemptOnlyWhereALimitApplies) {
  DeliveryPolicy policy(config());
  EXPECT_FALSE(policy.deadline(received(), slot(forward("ituki-ex@gmail.test"))));  // never attempted
  auto s = slot(forward("ituki-ex@gmail.test"), 0, {}, kT0);
  ASSERT_TRUE(policy.deadline(received(), s));
  EXPECT_EQ(*policy.deadline(received(), s), kT0 + 10min);
  // A forward with nowhere to go waits for [delivery] expire instead.
  EXPECT_FALSE(policy.deadline(received(), slot(forward("open@gmail.test"), 0, {}, kT0)));
  EXPECT_FALSE(policy.deadline(received(), slot(mailbox("ituki"), 0, {}, kT0)));
  // A notice is dropped at the forward's defer limit; a DSN waits for expire.
  EXPECT_EQ(*policy.deadline(notice(), s), kT0 + 10min);
  EXPECT_FALSE(policy.deadline(dsn(), s));
}

TEST(DeliveryPolicy, DescribeAndRedactHideHiddenForwards) {
  DeliveryPolicy policy(config());
  EXPECT_EQ(policy.describe(forward("ituki-ex@gmail.test")), "forward:<hidden>");
  EXPECT_EQ(policy.describe(forward("open@gmail.test")), "forward:open@gmail.test");
  EXPECT_EQ(policy.describe(mailbox("ituki")), "mailbox:ituki");
  EXPECT_EQ(policy.describe(mail::Target{mail::Target::Kind::relay, "ituki-ex@gmail.test"}), "relay:<hidden>");
  EXPECT_EQ(policy.redact("550 <ITUKI-EX@gmail.test> no"), "550 <<hidden>> no");
  EXPECT_TRUE(policy.path_hidden(slot(forward("ituki-ex@gmail.test"), 2, mailbox("ituki-gm"))));
  EXPECT_FALSE(policy.path_hidden(slot(forward("open-chain@gmail.test"), 1, mailbox("other"))));
}

// A slot waiting for a forward the configuration no longer names (removed,
// then a restart): the queue warns at start. Not the way back of an SRS
// bounce, not a slot already at a mailbox link.
TEST(DeliveryPolicy, ForgottenForwardIsAForwardTheConfigurationNoLongerNames) {
  DeliveryPolicy policy(config());
  EXPECT_FALSE(policy.forgotten_forward(slot(forward("ituki-ex@gmail.test"))));
  EXPECT_TRUE(policy.forgotten_forward(slot(forward("removed@gmail.test"))));
  EXPECT_FALSE(policy.forgotten_forward(slot(forward("removed@gmail.test"), 2, mailbox("ituki-gm"))));
  EXPECT_TRUE(policy.forgotten_forward(slot(forward("removed@gmail.test"), 1, forward("open@gmail.test"))));
  EXPECT_FALSE(policy.forgotten_forward(slot(mailbox("ituki"))));
  SlotState bounce = slot(forward("original-sender@example.org"));
  bounce.recipient = "SRS0=abcd=XY=example.org=original-sender@example.test";
  EXPECT_FALSE(policy.forgotten_forward(bounce));
}

// The SRS identity a forwarded copy carries: the hidden forward on its path,
// whichever link sends it, so that a late bounce finds that forward's
// fallback mailbox; none when nothing on the path is hidden.
TEST(DeliveryPolicy, SrsIdentityIsTheHiddenForwardOnThePath) {
  DeliveryPolicy policy(config());
  const auto hidden = forward("ituki-ex@gmail.test");
  EXPECT_EQ(policy.srs_identity(slot(hidden)), "ituki-ex@gmail.test");
  EXPECT_EQ(policy.srs_identity(slot(hidden, 1, forward("second@gmail.test"))), "ituki-ex@gmail.test");
  EXPECT_EQ(policy.srs_identity(slot(forward("open@gmail.test"))), "");
  EXPECT_EQ(policy.srs_identity(slot(forward("open-chain@gmail.test"), 1, mailbox("other"))), "");
  EXPECT_EQ(policy.srs_identity(slot(mailbox("ituki"))), "");
}

// The chain was edited (a reload, a restart) while a copy waited on one of
// its links: the next link is taken after where that target stands now, and
// a target no longer in the chain moves to the chain's first mailbox — never
// nowhere, which for a hidden path would drop the copy without a DSN.
TEST(DeliveryPolicy, AChainEditedUnderAWaitingCopyStillEndsInAMailbox) {
  DeliveryPolicy policy(config());
  // The chain is now ["forward:second@gmail.test", "mailbox:ituki-gm"].
  struct Case {
    const char* name;
    SlotState slot;
    std::string want_target;
    unsigned want_link;
  };
  const Case cases[] = {
      // As configured: link 1 is second@ (chain[0]); next chain[1].
      {"unchanged", slot(forward("ituki-ex@gmail.test"), 1, forward("second@gmail.test")), "mailbox:ituki-gm", 2},
      // Was at link 2 of a longer chain (a removed third@ at chain[0]).
      {"shortened", slot(forward("ituki-ex@gmail.test"), 2, forward("second@gmail.test")), "mailbox:ituki-gm", 2},
      // Its link was removed from the chain: the chain's mailbox.
      {"removed", slot(forward("ituki-ex@gmail.test"), 1, forward("gone@gmail.test")), "mailbox:ituki-gm", 2},
  };
  for (const auto& c : cases) {
    const Disposition d = policy.decide(received(), c.slot, refused(), kT0, 0.0);
    ASSERT_EQ(d.action, Action::divert) << c.name;
    EXPECT_EQ(d.next.target.str(), c.want_target) << c.name;
    EXPECT_EQ(d.next.link, c.want_link) << c.name;
  }
}

}  // namespace
}  // namespace hikyaku::policy
