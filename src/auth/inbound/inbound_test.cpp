// Inbound authentication tests (issue 4) with an in-memory resolver:
// checker pass/fail/none cases (RFC 7208, RFC 6376, RFC 7489, RFC 8617),
// Authentication-Results stamping and removal of forged fields with our
// authserv-id (RFC 8601 §5). The DMARC reject decision is intake's
// (src/intake/intake_test.cpp).
#include <gtest/gtest.h>

#include "auth/dkim/key_record.hpp"
#include "auth/dkim/signer.hpp"
#include "auth/inbound/checker.hpp"
#include "crypto/key.hpp"
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
  std::string signed_message(const std::string& body = "Hello.\r\n") {
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

TEST(Stamp, ForgedFieldsFirstAndLastAreRemovedAroundTheInsertion_RFC8601_5) {
  common::AuthenticationResults ar{"mx.example.test", {}};
  ar.add("spf", "pass", {{"smtp.mailfrom", "a@b.test"}});
  const std::string forged = "Authentication-Results: mx.example.test; dmarc=pass\r\n";
  std::string out = stamp(forged + kReceived + forged + "From: a@b.test\r\n" + forged + "\r\nbody\r\n", ar);
  EXPECT_EQ(out, kReceived + ar.field() + "From: a@b.test\r\n\r\nbody\r\n");
  // Only forged fields: ours alone is left, then the body.
  EXPECT_EQ(stamp(forged + forged + "\r\nbody\r\n", ar), ar.field() + "\r\nbody\r\n");
  EXPECT_EQ(stamp("", ar), ar.field());
}

TEST(Stamp, InsertsInPlaceWhenTheBufferHasRoom) {
  // The SMTP session reserves room for the field (DataReader::kHeadroom):
  // a large message is then never copied to stamp it.
  common::AuthenticationResults ar{"mx.example.test", {}};
  ar.add("spf", "pass", {{"smtp.mailfrom", "a@b.test"}});
  std::string msg = kReceived + "From: a@b.test\r\n\r\n" + std::string(1 << 20, 'x');
  msg.reserve(msg.size() + 4096);
  const char* buffer = msg.data();
  std::string out = stamp(std::move(msg), ar);
  EXPECT_EQ(out.data(), buffer);
  EXPECT_TRUE(out.starts_with(kReceived + ar.field() + "From: a@b.test\r\n"));
}


// RFC 8601 §3: iprev, the client's reverse name confirmed forward.
dns::IpAddress ip_of(std::string_view text) { return *dns::IpAddress::parse(text); }

TEST(Iprev, PassNamesTheNameThatLeadsBack_RFC8601_3) {
  dns::FakeResolver dns;
  dns.add_ptr("192.0.2.9", "elsewhere.test.");
  dns.add_ptr("192.0.2.9", "mail.client.test.");
  dns.add_a("elsewhere.test", "192.0.2.200");
  dns.add_a("mail.client.test", "192.0.2.9");
  auto r = check_iprev(dns, ip_of("192.0.2.9"));
  EXPECT_EQ(r.result, IprevResult::pass);
  EXPECT_EQ(r.name, "mail.client.test");  // trailing dot removed
}

TEST(Iprev, Ipv6LooksUpAaaa_RFC8601_3) {
  dns::FakeResolver dns;
  dns.add_ptr("2001:db8::9", "mail.client.test");
  dns.add_a("mail.client.test", "2001:db8::9");
  EXPECT_EQ(check_iprev(dns, ip_of("2001:db8::9")).result, IprevResult::pass);
}

TEST(Iprev, NoPtrIsPermerrorAndAMismatchIsFail_RFC8601_3) {
  dns::FakeResolver dns;
  EXPECT_EQ(check_iprev(dns, ip_of("192.0.2.9")).result, IprevResult::permerror);
  dns.add_ptr("192.0.2.9", "liar.test");
  dns.add_a("liar.test", "192.0.2.10");
  auto r = check_iprev(dns, ip_of("192.0.2.9"));
  EXPECT_EQ(r.result, IprevResult::fail);
  EXPECT_TRUE(r.name.empty());
  dns.add_ptr("192.0.2.11", "gone.test");  // the forward name does not exist
  EXPECT_EQ(check_iprev(dns, ip_of("192.0.2.11")).result, IprevResult::fail);
}

TEST(Iprev, TemporaryFailuresAreTemperror_RFC8601_3) {
  dns::FakeResolver dns;
  dns.set_temp_error("9.2.0.192.in-addr.arpa");
  EXPECT_EQ(check_iprev(dns, ip_of("192.0.2.9")).result, IprevResult::temperror);
  dns.add_ptr("192.0.2.10", "slow.test");
  dns.set_temp_error("slow.test");
  EXPECT_EQ(check_iprev(dns, ip_of("192.0.2.10")).result, IprevResult::temperror);
}

TEST(Iprev, AtMostTenNamesAreFollowed) {
  dns::FakeResolver dns;
  for (int i = 0; i < 10; ++i) dns.add_ptr("192.0.2.9", "n" + std::to_string(i) + ".test");
  dns.add_ptr("192.0.2.9", "real.test");  // the eleventh
  dns.add_a("real.test", "192.0.2.9");
  EXPECT_EQ(check_iprev(dns, ip_of("192.0.2.9")).result, IprevResult::fail);
}

TEST(Iprev, InTheAuthenticationResultsAndTheSummary_RFC8601_2_7_3) {
  Fixture f;
  f.dns.add_ptr("192.0.2.1", "mail.author.test");
  f.dns.add_a("mail.author.test", "192.0.2.1");
  std::string msg = kReceived + "From: ann@author.test\r\nSubject: x\r\n\r\nbody\r\n";
  Input in{msg, std::string("ann@author.test"), "h", "192.0.2.1"};
  auto v = check(f.dns, in, opts());
  ASSERT_TRUE(v.iprev);
  EXPECT_EQ(v.iprev->name, "mail.author.test");
  const std::string value = v.results.value();
  EXPECT_NE(value.find("iprev=pass policy.iprev=192.0.2.1"), std::string::npos) << value;
  EXPECT_NE(summary(v, "ann@author.test", "192.0.2.1").find("iprev=pass(mail.author.test)"), std::string::npos);
}

}  // namespace
}  // namespace hikyaku::auth::inbound
