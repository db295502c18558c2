// Forward chains, the diverted note, loops, reports and the address book.
#include <algorithm>

#include <gtest/gtest.h>

#include "base/clock.hpp"
#include "mail/header.hpp"
#include "policy/address_book.hpp"
#include "policy/forwards.hpp"
#include "policy/loop.hpp"
#include "policy/reports.hpp"
#include "srs/srs.hpp"

namespace hikyaku::policy {
namespace {
using namespace std::chrono_literals;
using mail::Target;

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

const char* kHidden = R"(
[[address]]
address = "ituki@example.test"
deliver = ["mailbox:ituki", "forward:ituki-ex@gmail.test"]
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

TEST(Forwards, ChainsExpandDepthFirst) {
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

TEST(Forwards, DivertedNoteIsOneLineQuotedEscaped) {
  auto t = std::chrono::system_clock::from_time_t(0);
  EXPECT_EQ(diverted_note(t, "550-5.7.1 first\r\n550 5.7.1 \"second\" \\ \x01\xff"),
            "Thu, 01 Jan 1970 00:00:00 +0000; reason=\"550-5.7.1 first 550 5.7.1 \\\"second\\\" \\\\ ??\"");
  std::string long_reply(2000, 'x');
  auto note = diverted_note(t, long_reply);
  EXPECT_LT(note.size(), 500u);
  EXPECT_EQ(note.find('\n'), std::string::npos);
}

TEST(Forwards, ReplyTextPrefersTheRemoteReply) {
  EXPECT_EQ(reply_text({AttemptResult::Kind::permanent, "5.7.1", "550 5.7.1 x"}), "550 5.7.1 x");
  EXPECT_EQ(reply_text({AttemptResult::Kind::temporary, "4.4.1", "connect refused"}), "4.4.1 connect refused");
}

TEST(Loop, ForwardedForOrDeliveredToNamingTheRecipientIsALoop_RFC5321_6_3) {
  auto r = load(kHidden);
  ASSERT_TRUE(r.config) << r.errors[0].str();
  const auto& c = *r.config;
  const auto target = forward("ituki-ex@gmail.test");
  const std::string rcpt = "ituki@example.test";
  EXPECT_FALSE(loop_reason(c, "Subject: x\r\n", Origin::received, rcpt, target));
  EXPECT_TRUE(loop_reason(c, "X-Hikyaku-Forwarded-For: <ITUKI@example.test>\r\n", Origin::received, rcpt, target));
  // What we write now (issue 17), bare or in angle brackets.
  EXPECT_TRUE(loop_reason(c, "X-Forwarded-For: ituki@example.test\r\n", Origin::received, rcpt, target));
  EXPECT_TRUE(loop_reason(c, "X-Forwarded-For: <Ituki@Example.test>\r\n", Origin::received, rcpt, target));
  // Gmail's own form names its account first, then the destination: only
  // the first address counts (a Gmail forward *to* us is not a loop).
  EXPECT_FALSE(loop_reason(c, "X-Forwarded-For: someone@gmail.test ituki@example.test\r\n", Origin::received, rcpt,
                           target));
  EXPECT_FALSE(loop_reason(c, "X-Forwarded-To: ituki@example.test\r\n", Origin::received, rcpt, target));
  EXPECT_TRUE(loop_reason(c, "Delivered-To: ituki@example.test\r\n", Origin::received, rcpt, target));
  EXPECT_FALSE(loop_reason(c, "Delivered-To: someone@example.test\r\n", Origin::received, rcpt, target));
  // A local domain routes back to us.
  EXPECT_TRUE(loop_reason(c, "", Origin::received, rcpt, forward("bob@example.test")));
  EXPECT_FALSE(loop_reason(c, "", Origin::notice, rcpt, forward("bob@example.test")));
}

TEST(Loop, ForwardHeadersPlacement) {
  std::string msg = "Received: from a\r\n\tby b; date\r\nSubject: x\r\n\r\nbody\r\n";
  EXPECT_EQ(add_forward_headers(msg, Origin::received, "ituki@example.test", "ituki-ex@gmail.test", ""),
            "Received: from a\r\n\tby b; date\r\nX-Forwarded-To: ituki-ex@gmail.test\r\n"
            "X-Forwarded-For: ituki@example.test\r\nSubject: x\r\n\r\nbody\r\n");
  EXPECT_TRUE(add_forward_headers(msg, Origin::received, "ituki@example.test", "ituki-ex@gmail.test", "D; reason=\"r\"")
                  .starts_with("X-Hikyaku-Diverted: D; reason=\"r\"\r\nReceived:"));
  // Generated and submitted mail is not a forwarded copy: neither field.
  for (auto origin : {Origin::dsn, Origin::notice, Origin::submitted})
    EXPECT_EQ(add_forward_headers(msg, origin, "ituki@example.test", "ituki-ex@gmail.test", ""), msg);
  // A header cannot be injected through the values.
  EXPECT_EQ(add_forward_headers(msg, Origin::received, "a@b\r\nBcc: x", "c@d", "").find("\r\nBcc:"),
            std::string::npos);
}

NoticeInput sample_notice() {
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

TEST(Reports, NoticeHeadersAndFacts_RFC3834_5) {
  std::string n = build_notice(sample_notice());
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

TEST(Reports, NoticeAndDsnAreCompleteGeneratedMessages_RFC3464_RFC5321_4_5_5) {
  auto r = load(kHidden);
  ASSERT_TRUE(r.config) << r.errors[0].str();
  ReportWriter writer(*r.config);
  OriginalMessage original;
  original.queue_id = "q1";
  original.sender = mail::Address{"someone", "sender.test"};
  original.headers = "Subject: s\r\nMessage-ID: <x@y>\r\n";

  NoticeFacts facts;
  facts.forward_to = "ituki-ex@gmail.test";
  facts.recipient = "ituki@example.test";
  facts.reply = "550 5.7.1 no";
  facts.holder = "mailbox ituki-gm";
  auto notice = writer.notice(original, facts);
  ASSERT_TRUE(notice) << notice.error().message;
  EXPECT_EQ(notice->origin, Origin::notice);
  EXPECT_FALSE(notice->envelope.sender);  // null reverse-path
  ASSERT_EQ(notice->plan.size(), 1u);
  EXPECT_EQ(notice->plan[0].recipient, "ituki@example.test");  // logs never name the owner
  EXPECT_EQ(notice->plan[0].targets.at(0).str(), "forward:ituki-ex@gmail.test");
  EXPECT_NE(notice->message.find("Message-ID: <x@y>"), std::string::npos);

  DsnFacts dsn;
  dsn.recipient = "ituki@example.test";
  dsn.status = "5.7.1";
  dsn.reply = "550 5.7.1 no <ituki-ex@gmail.test>";
  auto d = writer.dsn(original, dsn);
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->origin, Origin::dsn);
  EXPECT_FALSE(d->envelope.sender);
  EXPECT_EQ(d->plan.at(0).targets.at(0).str(), "forward:someone@sender.test");
  EXPECT_EQ(d->message.find("ituki-ex@gmail.test"), std::string::npos);

  // A local sender gets the DSN in its mailbox; an unknown local one gets none.
  EXPECT_EQ(writer.dsn_targets("ituki@example.test").size(), 1u);
  EXPECT_EQ(writer.dsn_targets("ituki@example.test")[0].str(), "mailbox:ituki");
  EXPECT_TRUE(writer.dsn_targets("nobody@example.test").empty());
  // Submitted mail: the DSN goes to the submitting login's own mailbox,
  // whatever the sender address (issue 13).
  ASSERT_EQ(writer.dsn_targets("ituki@example.test", "other").size(), 1u);
  EXPECT_EQ(writer.dsn_targets("ituki@example.test", "other")[0].str(), "mailbox:other");
  original.auth_user = "other";
  auto submitted = writer.dsn(original, dsn);
  ASSERT_TRUE(submitted) << submitted.error().message;
  EXPECT_EQ(submitted->plan.at(0).targets.at(0).str(), "mailbox:other");
  original.auth_user.clear();
  original.sender = mail::Address{"nobody", "example.test"};
  EXPECT_FALSE(writer.dsn(original, dsn));
  original.sender.reset();
  EXPECT_FALSE(writer.dsn(original, dsn));
}

TEST(AddressBook, LocalUnknownAndRelay_RFC5321_3_3_and_7_1) {
  auto r = load(kHidden);
  ASSERT_TRUE(r.config) << r.errors[0].str();
  AddressBook book(*r.config);
  EXPECT_EQ(book.check_recipient({"ituki", "example.test"}, false), RcptVerdict::accept);
  EXPECT_EQ(book.check_recipient({"ITUKI", "example.test"}, false), RcptVerdict::accept);
  EXPECT_EQ(book.check_recipient({"nobody", "example.test"}, false), RcptVerdict::unknown_user);
  EXPECT_EQ(book.check_recipient({"x", "elsewhere.test"}, false), RcptVerdict::relay_denied);
  EXPECT_EQ(book.check_recipient({"x", "elsewhere.test"}, true), RcptVerdict::accept);
  ASSERT_EQ(book.plan({"ituki", "example.test"}).size(), 2u);
  EXPECT_TRUE(book.plan({"x", "elsewhere.test"}).empty());
  // Relayed for an authenticated user: sent to the recipient itself; a
  // local address keeps its own plan.
  EXPECT_EQ(book.plan({"x", "elsewhere.test"}, true), std::vector<Target>{forward("x@elsewhere.test")});
  EXPECT_EQ(book.plan({"ituki", "example.test"}, true).size(), 2u);
}

// Issue 14: a gateway accepts from anyone only the recipients its rules
// list for the next hop, relays them unchanged (relay:), routes a local
// address a rule names elsewhere, and keeps the copy a rule asks for.
TEST(AddressBook, GatewayRecipientsRoutesAndCopies) {
  auto r = config::load_config_text(R"(
[[domain]]
name = "example.test"
[[mailbox]]
name = "ituki"
[[mailbox]]
name = "relayed"
[[address]]
address = "ituki@example.test"
deliver = ["mailbox:ituki", "forward:ituki-ex@gmail.test"]
[[address]]
address = "moved@example.test"
deliver = ["mailbox:ituki"]
[[route]]
match = "moved@example.test"
via = "[192.0.2.5]:25"
[[route]]
match = "@corp.test"
via = "[192.0.2.6]:25"
recipients = ["boss@corp.test"]
copy_to = "mailbox:relayed"
[[route]]
match = "*"
via = "relay.isp.test:587"
)", "t.toml", "/etc/hk");
  ASSERT_TRUE(r.config) << r.errors[0].str();
  AddressBook book(*r.config);
  const Target relay_boss{Target::Kind::relay, "boss@corp.test"};
  EXPECT_EQ(book.check_recipient({"boss", "corp.test"}, false), RcptVerdict::accept);
  EXPECT_EQ(book.check_recipient({"BOSS", "Corp.Test"}, false), RcptVerdict::accept);
  EXPECT_EQ(book.check_recipient({"intern", "corp.test"}, false), RcptVerdict::relay_denied);
  EXPECT_EQ(book.plan({"boss", "corp.test"}), (std::vector<Target>{relay_boss, mailbox("relayed")}));
  // Submitted: a remote recipient like any other, still copied.
  EXPECT_EQ(book.plan({"boss", "corp.test"}, true),
            (std::vector<Target>{forward("boss@corp.test"), mailbox("relayed")}));
  // A local address a rule sends elsewhere; the catch-all takes no local mail.
  EXPECT_EQ(book.plan({"moved", "example.test"}), std::vector<Target>{Target(Target::Kind::relay, "moved@example.test")});
  EXPECT_EQ(book.plan({"ituki", "example.test"}).size(), 2u);
  EXPECT_EQ(book.check_recipient({"nobody", "example.test"}, false), RcptVerdict::unknown_user);
  EXPECT_EQ(book.check_recipient({"x", "elsewhere.test"}, false), RcptVerdict::relay_denied);
}

// RFC 6409 §6.1: a login sends only as its own send_as addresses.
TEST(AddressBook, SendAsOnlyTheLoginsOwnAddresses_RFC6409_6_1) {
  auto r = load(kHidden);
  ASSERT_TRUE(r.config) << r.errors[0].str();
  r.config->mailboxes.at(0).send_as = {"ituki@example.test", "boss@example.test"};
  AddressBook book(*r.config);
  EXPECT_TRUE(book.may_send_as("ituki", {"ituki", "example.test"}));
  EXPECT_TRUE(book.may_send_as("ituki", {"Boss", "EXAMPLE.test"}));
  EXPECT_FALSE(book.may_send_as("ituki", {"other", "example.test"}));
  EXPECT_FALSE(book.may_send_as("other", {"ituki", "example.test"}));  // no send_as at all
  EXPECT_FALSE(book.may_send_as("nobody", {"ituki", "example.test"}));
}

// RFC 5321 §4.5.1: postmaster@ every local domain is accepted, whatever its
// case, into the postmaster mailbox (the first [[mailbox]] unless the
// top-level postmaster says otherwise); an [[address]] for it still wins.
TEST(AddressBook, PostmasterIsAlwaysAccepted_RFC5321_4_5_1) {
  auto r = load("");
  ASSERT_TRUE(r.config) << r.errors[0].str();
  EXPECT_EQ(r.config->postmaster, "ituki");
  AddressBook book(*r.config);
  EXPECT_EQ(book.check_recipient({"PostMaster", "Example.Test"}, false), RcptVerdict::accept);
  EXPECT_EQ(book.plan({"postmaster", "example.test"}), std::vector<Target>{mailbox("ituki")});
  EXPECT_EQ(book.check_recipient({"postmaster", "elsewhere.test"}, false), RcptVerdict::relay_denied);

  // A top-level key: before the tables.
  auto with = [](const std::string& top) {
    return config::load_config_text(top + "\n[[domain]]\nname = \"example.test\"\n[[mailbox]]\nname = \"ituki\"\n"
                                    "[[mailbox]]\nname = \"other\"\n",
                                    "t.toml", "/tmp");
  };
  auto chosen = with("postmaster = \"other\"");
  ASSERT_TRUE(chosen.config) << chosen.errors[0].str();
  EXPECT_EQ(AddressBook(*chosen.config).plan({"postmaster", "example.test"}), std::vector<Target>{mailbox("other")});

  auto bad = with("postmaster = \"nobody\"");
  ASSERT_FALSE(bad.config);
  EXPECT_NE(bad.errors[0].str().find("postmaster: no [[mailbox]] named 'nobody'"), std::string::npos)
      << bad.errors[0].str();
}

TEST(AddressBook, SrsBouncesHiddenToFallbackPlainToSenderBadRefused) {
  auto r = load(std::string(kHidden) + R"(
[srs]
domain = "example.test"
secret_file = "/nonexistent"
)");
  ASSERT_TRUE(r.config) << r.errors[0].str();
  base::FakeClock clock(std::chrono::system_clock::from_time_t(1700000000));
  AddressBook book(*r.config, {"s3cret"}, clock);
  srs::Rewriter signer({{"s3cret"}}, clock);

  // A forward of the hidden target: its bounce goes to the fallback mailbox.
  auto hidden = signer.forward({"ann", "author.test"}, "example.test", "ituki-ex@gmail.test");
  EXPECT_EQ(book.check_recipient(hidden, false), RcptVerdict::accept);
  auto plan = book.plan(hidden);
  ASSERT_EQ(plan.size(), 1u);
  EXPECT_EQ(plan[0].str(), "mailbox:ituki-gm");

  // An ordinary forward: reversed to the original sender.
  auto plain = signer.forward({"ann", "author.test"}, "example.test");
  ASSERT_EQ(book.plan(plain).size(), 1u);
  EXPECT_EQ(book.plan(plain)[0].str(), "forward:ann@author.test");

  // A sender in another of our domains: its own plan (a forward to it
  // would be refused as a routing loop, and the bounce lost); an unknown
  // address there is refused like any unknown local recipient.
  auto two = load(std::string(kHidden) + R"(
[[domain]]
name = "other-local.test"
[[address]]
address = "carol@other-local.test"
deliver = ["mailbox:ituki"]
[srs]
domain = "example.test"
secret_file = "/nonexistent"
)");
  ASSERT_TRUE(two.config) << two.errors[0].str();
  AddressBook with_carol(*two.config, {"s3cret"}, clock);
  auto local = signer.forward({"carol", "other-local.test"}, "example.test");
  EXPECT_EQ(with_carol.check_recipient(local, false), RcptVerdict::accept);
  EXPECT_EQ(with_carol.plan(local), std::vector<Target>{mailbox("ituki")});
  auto stranger = signer.forward({"nobody", "other-local.test"}, "example.test");
  EXPECT_EQ(with_carol.check_recipient(stranger, false), RcptVerdict::bad_srs);

  // A DSN whose sender is one of our SRS addresses (mail that came back to
  // us through a forward elsewhere) goes where a bounce to it would.
  ReportWriter writer(*r.config, &book);
  EXPECT_EQ(writer.dsn_targets(plain.str()), std::vector<Target>{forward("ann@author.test")});
  EXPECT_EQ(writer.dsn_targets(hidden.str()), std::vector<Target>{mailbox("ituki-gm")});

  // Tampered or expired.
  mail::Address bad = plain;
  bad.local[5] = bad.local[5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(book.check_recipient(bad, false), RcptVerdict::bad_srs);
  EXPECT_TRUE(book.plan(bad).empty());
  clock.advance(std::chrono::hours(24 * 30));
  EXPECT_EQ(book.check_recipient(plain, false), RcptVerdict::bad_srs);
  // Not SRS, or not our SRS domain: the ordinary rules.
  EXPECT_EQ(book.check_recipient({"ituki", "example.test"}, false), RcptVerdict::accept);
  EXPECT_EQ(book.check_recipient({"SRS0=x=y=z=w", "elsewhere.test"}, false), RcptVerdict::relay_denied);

  // The hidden forward's fallback mailbox removed from the configuration
  // (a removed forward stays known: config/known_forwards.hpp): its bounce
  // is refused at RCPT, never written into a mailbox nobody has.
  clock.set(std::chrono::system_clock::from_time_t(1700000000));
  auto& boxes = r.config->mailboxes;
  boxes.erase(std::remove_if(boxes.begin(), boxes.end(), [](const auto& m) { return m.name == "ituki-gm"; }),
              boxes.end());
  AddressBook without(*r.config, {"s3cret"}, clock);
  EXPECT_EQ(without.check_recipient(hidden, false), RcptVerdict::bad_srs);
  EXPECT_TRUE(without.plan(hidden).empty());
}

}  // namespace
}  // namespace hikyaku::policy
