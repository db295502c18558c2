// Inbound authentication tests (issue 4) with an in-memory resolver:
// checker pass/fail/none cases (RFC 7208, RFC 6376, RFC 7489, RFC 8617),
// Authentication-Results stamping and removal of forged fields with our
// authserv-id (RFC 8601 §5), the DMARC reject decision, SRS bounces.
#include <gtest/gtest.h>

#include "auth/dkim/key_record.hpp"
#include "auth/dkim/signer.hpp"
#include "auth/inbound/checker.hpp"
#include "auth/inbound/inbound_sink.hpp"
#include "auth/inbound/srs_bounces.hpp"
#include "crypto/key.hpp"
#include "dns/caching_resolver.hpp"
#include "dns/fake_resolver.hpp"

namespace hikyaku::auth::inbound {
namespace {

const auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));

struct Fixture {
  dns::FakeResolver dns;
  crypto::PrivateKey key = crypto::generate_key(crypto::KeyType::ed25519).value();
  Fixture() {
    dns.add_txt("author.test", "v=spf1 ip4:192.0.2.1 -all");
    dns.add_txt("_dmarc.author.test", "v=DMARC1; p=reject");
    dns.add_txt("sel._domainkey.author.test", dkim::format_key_record(key.public_key()));
    dns.add_a("author.test", "192.0.2.1");
  }
  std::string signed_message(std::string body = "Hello.\r\n") {
    std::string m = "From: Ann Author <ann@author.test>\r\nTo: bob@example.test\r\nSubject: hi\r\n"
                    "Date: Tue, 14 Nov 2023 22:13:20 +0000\r\nMessage-ID: <1@author.test>\r\n\r\n" + body;
    dkim::SignOptions o;
    o.domain = "author.test";
    o.selector = "sel";
    return dkim::sign(m, key, o, kNow).value() + m;
  }
};

const std::string kReceived = "Received: from client (client [192.0.2.1]) by mx.example.test; x\r\n";

Options opts() {
  Options o;
  o.authserv_id = "mx.example.test";
  o.now = kNow;
  return o;
}

const common::AuthResult* find(const common::AuthenticationResults& ar, std::string_view method) {
  for (const auto& r : ar.results)
    if (r.method == method) return &r;
  return nullptr;
}

std::string prop(const common::AuthResult& r, std::string_view key) {
  for (const auto& [k, v] : r.properties)
    if (k == key) return v;
  return "";
}

TEST(Checker, AllPass_RFC7208_RFC6376_RFC7489) {
  Fixture f;
  std::string msg = kReceived + f.signed_message();
  Input in{msg, std::string("ann@author.test"), "client.author.test", "192.0.2.1"};
  auto v = check(f.dns, in, opts());
  EXPECT_EQ(v.spf.result, spf::Result::pass);
  ASSERT_EQ(v.dkim.size(), 1u);
  EXPECT_EQ(v.dkim[0].status, dkim::Status::pass) << v.dkim[0].detail;
  EXPECT_EQ(v.dmarc.result, dmarc::Result::pass);
  EXPECT_TRUE(v.dmarc.dkim_aligned);
  EXPECT_EQ(v.arc.status, arc::ChainStatus::none);
  EXPECT_FALSE(v.dmarc_reject());
  std::string value = v.results.value();
  EXPECT_NE(value.find("mx.example.test; spf=pass smtp.mailfrom=ann@author.test"), std::string::npos) << value;
  EXPECT_NE(value.find("dkim=pass header.d=author.test header.s=sel"), std::string::npos) << value;
  EXPECT_NE(value.find("dmarc=pass header.from=author.test policy.dmarc=reject"), std::string::npos) << value;
  EXPECT_NE(value.find("arc=none"), std::string::npos) << value;
}

TEST(Checker, BrokenSignatureAndWrongIpFail_RFC6376_6_1_3_RFC7489_6_6_4) {
  Fixture f;
  std::string msg = f.signed_message();
  msg.replace(msg.find("Hello."), 6, "Hallo.");  // body altered on the way
  msg = kReceived + msg;
  Input in{msg, std::string("ann@author.test"), "elsewhere", "198.51.100.7"};
  auto v = check(f.dns, in, opts());
  EXPECT_EQ(v.spf.result, spf::Result::fail);
  EXPECT_EQ(v.dkim.at(0).status, dkim::Status::fail);
  EXPECT_EQ(v.dmarc.result, dmarc::Result::fail);
  EXPECT_TRUE(v.dmarc_reject());
  auto* d = find(v.results, "dkim");
  ASSERT_NE(d, nullptr);
  EXPECT_EQ(d->result, "fail");
  EXPECT_FALSE(d->reason.empty());
}

TEST(Checker, SpfOnlyPassesDmarcButNotViaDkim_RFC7489_4_2) {
  Fixture f;
  std::string msg = kReceived + "From: ann@author.test\r\nSubject: x\r\n\r\nbody\r\n";
  Input in{msg, std::string("ann@author.test"), "h", "192.0.2.1"};
  auto v = check(f.dns, in, opts());
  EXPECT_EQ(v.dmarc.result, dmarc::Result::pass);
  EXPECT_TRUE(dmarc::passed_only_via_spf_under_enforcement(v.dmarc));
  EXPECT_EQ(find(v.results, "dkim")->result, "none");
}

TEST(Checker, NothingPublishedGivesNone_RFC8601_2_7) {
  dns::FakeResolver dns;
  std::string msg = kReceived + "From: x@plain.test\r\n\r\nbody\r\n";
  Input in{msg, std::string("x@plain.test"), "h", "192.0.2.9"};
  auto v = check(dns, in, opts());
  EXPECT_EQ(v.spf.result, spf::Result::none);
  EXPECT_EQ(v.dmarc.result, dmarc::Result::none);
  EXPECT_EQ(find(v.results, "spf")->result, "none");
  EXPECT_EQ(find(v.results, "dkim")->result, "none");
  EXPECT_EQ(find(v.results, "dmarc")->result, "none");
  EXPECT_EQ(find(v.results, "arc")->result, "none");
}

TEST(Checker, NullSenderChecksHelo_RFC7208_2_3) {
  dns::FakeResolver dns;
  dns.add_txt("mta.sender.test", "v=spf1 ip4:192.0.2.3 -all");
  std::string msg = kReceived + "From: MAILER-DAEMON@mta.sender.test\r\n\r\nbounce\r\n";
  Input in{msg, std::nullopt, "mta.sender.test", "192.0.2.3"};
  auto v = check(dns, in, opts());
  EXPECT_EQ(v.spf.result, spf::Result::pass);
  EXPECT_EQ(prop(*find(v.results, "spf"), "smtp.helo"), "mta.sender.test");
}

TEST(Checker, TwoFromFieldsArePermerror_RFC7489_6_6_1) {
  dns::FakeResolver dns;
  std::string msg = kReceived + "From: a@x.test\r\nFrom: b@y.test\r\n\r\nb\r\n";
  auto v = check(dns, Input{msg, std::string("a@x.test"), "h", "192.0.2.3"}, opts());
  EXPECT_EQ(v.dmarc.result, dmarc::Result::permerror);
}

TEST(Stamp, RemovesForgedOwnResultsAndInsertsAfterReceived_RFC8601_5) {
  common::AuthenticationResults ar{"mx.example.test", {}};
  ar.add("spf", "pass", {{"smtp.mailfrom", "a@b.test"}});
  std::string msg = kReceived +
                    "Authentication-Results: MX.example.test; dkim=pass\r\n  header.d=evil.test\r\n"
                    "Authentication-Results: other.example; spf=fail\r\n"
                    "From: a@b.test\r\n\r\nbody\r\n";
  std::string out = stamp(msg, ar);
  EXPECT_EQ(out, kReceived + ar.field() + "Authentication-Results: other.example; spf=fail\r\n" +
                     "From: a@b.test\r\n\r\nbody\r\n");
  auto own = own_results(common::parse_message(out), "mx.example.test");
  ASSERT_TRUE(own);
  EXPECT_EQ(own->results.at(0).result, "pass");
}

// A sink that records what reached the spool.
class Recorder final : public smtp::server::MessageSink {
 public:
  base::Result<std::string> store(const mail::Envelope&, std::string message) override {
    messages.push_back(std::move(message));
    return std::string("Q1");
  }
  std::vector<std::string> messages;
};

config::Config load(std::string_view text) {
  auto r = config::load_config_text(text, "t.toml", "/tmp");
  std::string errors;
  for (const auto& e : r.errors) errors += e.str() + "\n";
  EXPECT_TRUE(r.config) << errors;
  return r.config ? *r.config : config::Config{};
}

const char* kConfig = R"(
hostname = "mx.example.test"
[srs]
domain = "example.test"
[[domain]]
name = "example.test"
dmarc_inbound = "reject"
[[domain]]
name = "tagged.test"
[[mailbox]]
name = "bob"
[[mailbox]]
name = "bob-fallback"
[[address]]
address = "bob@example.test"
deliver = ["mailbox:bob", "forward:bob-private@gmail.test"]
[[address]]
address = "carol@tagged.test"
deliver = ["mailbox:bob"]
[[forward]]
to = "bob-private@gmail.test"
hidden = true
fallback = ["mailbox:bob-fallback"]
)";

mail::Envelope envelope(std::string rcpt_local, std::string rcpt_domain) {
  mail::Envelope e;
  e.sender = mail::Address{"ann", "author.test"};
  e.recipients.push_back({std::move(rcpt_local), std::move(rcpt_domain)});
  e.helo = "elsewhere";
  e.client_ip = "198.51.100.7";
  return e;
}

TEST(InboundSink, RejectsDmarcFailureOnlyWhereAsked_RFC7489_10_3) {
  Fixture f;
  auto config = load(kConfig);
  Recorder spool;
  InboundSink sink(config, f.dns, spool, nullptr, nullptr);
  std::string msg = f.signed_message();
  msg.replace(msg.find("Hello."), 6, "Hallo.");
  msg = kReceived + msg;

  auto refused = sink.accept(envelope("bob", "example.test"), msg);
  ASSERT_TRUE(refused.ok());
  ASSERT_TRUE(refused->refusal);
  EXPECT_EQ(refused->refusal->code, 550);
  EXPECT_EQ(refused->refusal->status, "5.7.1");
  EXPECT_TRUE(spool.messages.empty());

  // "tag" (the default): recorded and delivered.
  auto tagged = sink.accept(envelope("carol", "tagged.test"), msg);
  ASSERT_TRUE(tagged.ok());
  EXPECT_FALSE(tagged->refusal);
  EXPECT_EQ(tagged->queue_id, "Q1");
  ASSERT_EQ(spool.messages.size(), 1u);
  const std::string& stored = spool.messages[0];
  EXPECT_EQ(stored.find(kReceived), 0u);
  EXPECT_EQ(stored.find("Authentication-Results: mx.example.test; spf=fail"), kReceived.size()) << stored;
  EXPECT_NE(stored.find("dmarc=fail header.from=author.test"), std::string::npos);
}

// A spool that also admits on the event loop.
class NowRecorder final : public smtp::server::MessageSink {
 public:
  base::Result<std::string> store(const mail::Envelope&, std::string message) override {
    messages.push_back(std::move(message));
    return std::string("Q1");
  }
  std::optional<base::Result<smtp::server::Admission>> admit_now(const mail::Envelope& envelope,
                                                                 std::string& message) override {
    return admit(envelope, std::move(message));
  }
  std::vector<std::string> messages;
};

// admit_now() decides on the event loop only from cached answers: the first
// message from a domain is declined untouched (no lookup made), the same
// checks then run on a worker (admit()), and the next message from that
// domain is decided on the loop, with the same verdict.
TEST(InboundSink, AdmitNowDecidesFromCachedAnswersOnly) {
  Fixture f;
  f.dns.set_ttl(300);
  dns::CachingResolver cache(f.dns);
  auto config = load(kConfig);
  NowRecorder spool;
  InboundSink sink(config, cache, spool, nullptr, nullptr);
  const std::string msg = kReceived + f.signed_message();
  auto env = envelope("carol", "tagged.test");
  env.client_ip = "192.0.2.1";

  std::string first = msg;
  EXPECT_FALSE(sink.admit_now(env, first).has_value());
  EXPECT_EQ(first, msg) << "declined: the message is untouched";
  EXPECT_EQ(f.dns.queries(), 0) << "no lookup on the event loop";
  EXPECT_TRUE(spool.messages.empty());

  ASSERT_TRUE(sink.admit(env, msg));  // on a worker: the lookups fill the cache
  const int asked = f.dns.queries();
  EXPECT_GT(asked, 0);

  std::string second = msg;
  auto now = sink.admit_now(env, second);
  ASSERT_TRUE(now.has_value());
  ASSERT_TRUE(now->ok());
  EXPECT_FALSE((*now)->refusal);
  EXPECT_EQ(f.dns.queries(), asked) << "all from the cache";
  ASSERT_EQ(spool.messages.size(), 2u);
  EXPECT_EQ(spool.messages[1], spool.messages[0]) << "the same stamp as the worker's";
  EXPECT_NE(spool.messages[1].find("spf=pass"), std::string::npos) << spool.messages[1];
  EXPECT_NE(spool.messages[1].find("dkim=pass"), std::string::npos);

  // A refusal is decided on the loop too (DMARC p=reject where asked).
  std::string bad = msg;
  bad.replace(bad.find("Hello."), 6, "Hallo.");
  auto bob = envelope("bob", "example.test");
  bob.client_ip = "192.0.2.99";  // SPF fail as well
  std::string probe = bad;
  (void)sink.admit(bob, probe);  // warm what this client's checks need
  auto refused = sink.admit_now(bob, bad);
  ASSERT_TRUE(refused.has_value());
  ASSERT_TRUE(refused->ok());
  ASSERT_TRUE((*refused)->refusal);
  EXPECT_EQ((*refused)->refusal->status, "5.7.1");
}

TEST(SrsBounces, HiddenToFallbackPlainToSenderBadRefused) {
  auto config = load(kConfig);
  base::FakeClock clock(kNow);
  SrsBounces bounces(config, {"s3cret"}, clock);
  srs::Rewriter signer({{"s3cret"}}, clock);

  // A forward of the hidden target: its bounce goes to the fallback mailbox.
  auto hidden = signer.forward({"ann", "author.test"}, "example.test", "bob-private@gmail.test");
  EXPECT_EQ(bounces.screen(hidden)->code, 250);
  auto plan = bounces.plan(hidden);
  ASSERT_TRUE(plan);
  ASSERT_EQ(plan->size(), 1u);
  EXPECT_EQ((*plan)[0].str(), "mailbox:bob-fallback");

  // An ordinary forward: reversed to the original sender.
  auto plain = signer.forward({"ann", "author.test"}, "example.test");
  auto plan2 = bounces.plan(plain);
  ASSERT_TRUE(plan2);
  EXPECT_EQ((*plan2)[0].str(), "forward:ann@author.test");

  // Tampered, expired, or not ours.
  mail::Address bad = plain;
  bad.local[5] = bad.local[5] == 'A' ? 'B' : 'A';
  EXPECT_EQ(bounces.screen(bad)->code, 550);
  EXPECT_EQ(bounces.screen(bad)->status, "5.1.1");
  EXPECT_FALSE(bounces.plan(bad));
  clock.advance(std::chrono::hours(24 * 30));
  EXPECT_EQ(bounces.screen(plain)->code, 550);
  EXPECT_FALSE(bounces.screen({"bob", "example.test"}));
  EXPECT_FALSE(bounces.screen({"SRS0=x=y=z=w", "elsewhere.test"}));
  // The refusal never names the forward.
  EXPECT_EQ(bounces.screen(bad)->summary().find("gmail"), std::string::npos);
}

}  // namespace
}  // namespace hikyaku::auth::inbound
