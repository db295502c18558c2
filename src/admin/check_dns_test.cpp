// check_dns_records against the FakeResolver: a correct zone, then one
// mistake at a time, each named with the record to publish; DNS failures
// reported as failures, not as missing records.
#include "admin/check_dns.hpp"

#include <gtest/gtest.h>

#include "admin/dns_commands.hpp"
#include "dns/fake_resolver.hpp"

namespace hikyaku::admin {
namespace {

using Status = DnsFinding::Status;

class CheckDnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    config_.source = "/etc/hikyaku/hikyaku.toml";
    config_.hostname = "mx.example.test";
    config::Domain d;
    d.name = "example.test";
    d.dkim_selector = "hk1";
    d.dkim_key = "/keys/example.test.hk1.pem";
    config_.domains.push_back(d);
    auto key = crypto::generate_key(crypto::KeyType::ed25519);
    ASSERT_TRUE(key.ok());
    key_ = key->public_key();
    keys_.emplace("example.test", *key_);
  }

  // The zone `hikyaku dns` asks for, published correctly.
  void publish_correct_zone() {
    dns_.add_mx("example.test", 10, "mx.example.test");
    dns_.add_a("mx.example.test", "192.0.2.10");
    dns_.add_ptr("192.0.2.10", "mx.example.test");
    dns_.add_txt("example.test", "v=spf1 mx -all");
    dns_.add_txt("mx.example.test", "v=spf1 a -all");
    dns_.add_txt("hk1._domainkey.example.test", dkim_record("hk1", "example.test", *key_).data);
    dns_.add_txt("_dmarc.example.test", "v=DMARC1; p=quarantine; adkim=r; aspf=r");
  }

  std::vector<DnsFinding> run() { return check_dns_records(config_, keys_, dns_, {}); }

  // The one finding of `check` about `subject`.
  static DnsFinding find(const std::vector<DnsFinding>& findings, const std::string& check,
                         const std::string& subject) {
    for (const auto& f : findings)
      if (f.check == check && f.subject == subject) return f;
    ADD_FAILURE() << "no " << check << " finding for " << subject;
    return {};
  }

  static std::string all_lines(const std::vector<DnsFinding>& findings) {
    std::string out;
    for (const auto& f : findings) out += f.line() + "\n";
    return out;
  }

  config::Config config_;
  std::optional<crypto::PublicKey> key_;
  DkimKeys keys_;
  dns::FakeResolver dns_;
};

TEST_F(CheckDnsTest, CorrectZoneIsAllOk) {
  publish_correct_zone();
  auto findings = run();
  for (const auto& f : findings) EXPECT_EQ(f.status, Status::ok) << f.line();
  EXPECT_EQ(check_dns_status(findings), 0);
  // address, FCrDNS, MX, SPF, DKIM, DMARC, the HELO name's SPF.
  EXPECT_EQ(findings.size(), 7u) << all_lines(findings);
  EXPECT_EQ(find(findings, "SPF", "mx.example.test").line(), "SPF mx.example.test: ok: pass for 192.0.2.10");
  EXPECT_EQ(find(findings, "SPF", "example.test").line(), "SPF example.test: ok: pass for 192.0.2.10");
}

// Notices and DSNs have a null sender: receivers check the HELO name's SPF
// (RFC 7208 §2.3). Without a record for it, `check dns` says what to publish.
TEST_F(CheckDnsTest, HeloNameWithoutSpfIsAProblem_RFC7208_2_3) {
  publish_correct_zone();
  dns_ = dns::FakeResolver();
  dns_.add_mx("example.test", 10, "mx.example.test");
  dns_.add_a("mx.example.test", "192.0.2.10");
  dns_.add_ptr("192.0.2.10", "mx.example.test");
  dns_.add_txt("example.test", "v=spf1 mx -all");
  auto helo = find(run(), "SPF", "mx.example.test");
  EXPECT_EQ(helo.status, Status::problem) << helo.line();
  EXPECT_EQ(helo.publish, "mx.example.test. IN TXT \"v=spf1 a -all\"");
}

// A hostname that is itself a [[domain]] needs no record of its own: the
// domain's `mx` covers it.
TEST_F(CheckDnsTest, HostnameThatIsADomainHasNoSeparateHeloCheck) {
  config_.hostname = "example.test";
  EXPECT_FALSE(helo_needs_spf(config_));
  config_.hostname = "mx.example.test";
  config_.srs.domain = "MX.example.test";
  EXPECT_FALSE(helo_needs_spf(config_));
  config_.srs.domain = "fwd.example.test";
  EXPECT_TRUE(helo_needs_spf(config_));
}

TEST_F(CheckDnsTest, MxElsewhereIsNamedWithTheRecord_RFC5321_5_1) {
  publish_correct_zone();
  dns_ = dns::FakeResolver();
  dns_.add_mx("example.test", 10, "mail.elsewhere.test");
  dns_.add_a("mx.example.test", "192.0.2.10");
  dns_.add_ptr("192.0.2.10", "mx.example.test");
  dns_.add_txt("example.test", "v=spf1 ip4:192.0.2.10 -all");
  dns_.add_txt("hk1._domainkey.example.test", dkim_record("hk1", "example.test", *key_).data);
  dns_.add_txt("_dmarc.example.test", "v=DMARC1; p=none");
  auto findings = run();
  auto mx = find(findings, "MX", "example.test");
  EXPECT_EQ(mx.status, Status::problem);
  EXPECT_EQ(mx.line(), "MX example.test: problem: MX names 10 mail.elsewhere.test, not mx.example.test; publish: " +
                           mx_record(config_, "example.test").text());
  EXPECT_EQ(find(findings, "SPF", "example.test").status, Status::ok) << "ip4: covers the host without MX";
  EXPECT_EQ(check_dns_status(findings), 1);
}

TEST_F(CheckDnsTest, BackupMxBesideHostnameIsOk) {
  publish_correct_zone();
  dns_.add_mx("example.test", 20, "backup.example.test");
  auto mx = find(run(), "MX", "example.test");
  EXPECT_EQ(mx.status, Status::ok);
  EXPECT_NE(mx.detail.find("also 20 backup.example.test"), std::string::npos) << mx.detail;
}

TEST_F(CheckDnsTest, NullMxIsAProblem_RFC7505) {
  publish_correct_zone();
  dns_ = dns::FakeResolver();
  dns_.add_mx("example.test", 0, "");
  dns_.add_a("mx.example.test", "192.0.2.10");
  EXPECT_EQ(find(run(), "MX", "example.test").status, Status::problem);
}

TEST_F(CheckDnsTest, SpfIsEvaluatedNotStringMatched_RFC7208_4) {
  publish_correct_zone();
  dns_ = dns::FakeResolver();
  dns_.add_mx("example.test", 10, "mx.example.test");
  dns_.add_a("mx.example.test", "192.0.2.10");
  // Neither "mx" nor the address appears in the record: the include does it.
  dns_.add_txt("example.test", "v=spf1 include:_spf.provider.test -all");
  dns_.add_txt("_spf.provider.test", "v=spf1 ip4:192.0.2.0/24 -all");
  EXPECT_EQ(find(run(), "SPF", "example.test").status, Status::ok);
}

TEST_F(CheckDnsTest, SpfNotCoveringTheHost_RFC7208_4) {
  publish_correct_zone();
  dns_ = dns::FakeResolver();
  dns_.add_mx("example.test", 10, "mx.example.test");
  dns_.add_a("mx.example.test", "192.0.2.10");
  dns_.add_txt("example.test", "v=spf1 ip4:198.51.100.1 mx:elsewhere.test -all");
  auto spf = find(run(), "SPF", "example.test");
  EXPECT_EQ(spf.status, Status::problem);
  EXPECT_NE(spf.detail.find("fail for 192.0.2.10"), std::string::npos) << spf.line();
  EXPECT_NE(spf.publish.find(spf_record("example.test").text()), std::string::npos) << spf.line();
}

TEST_F(CheckDnsTest, SpfMissingAndBroken_RFC7208_4_5) {
  dns_.add_mx("example.test", 10, "mx.example.test");
  dns_.add_a("mx.example.test", "192.0.2.10");
  auto missing = find(run(), "SPF", "example.test");
  EXPECT_EQ(missing.status, Status::problem);
  EXPECT_EQ(missing.detail, "no SPF record");
  EXPECT_EQ(missing.publish, spf_record("example.test").text());

  dns_.add_txt("example.test", "v=spf1 mx frobnicate -all");
  auto broken = find(run(), "SPF", "example.test");
  EXPECT_EQ(broken.status, Status::problem);
  EXPECT_NE(broken.detail.find("permerror"), std::string::npos) << broken.line();
}

TEST_F(CheckDnsTest, DkimWithAnotherKey_RFC6376_3_6_1) {
  publish_correct_zone();
  auto other = crypto::generate_key(crypto::KeyType::ed25519);
  ASSERT_TRUE(other.ok());
  dns_ = dns::FakeResolver();
  dns_.add_txt("hk1._domainkey.example.test", dkim_record("hk1", "example.test", other->public_key()).data);
  auto dkim = find(run(), "DKIM", "hk1._domainkey.example.test");
  EXPECT_EQ(dkim.status, Status::problem);
  EXPECT_NE(dkim.detail.find("p= is a different key"), std::string::npos) << dkim.line();
  EXPECT_EQ(dkim.publish, dkim_record("hk1", "example.test", *key_).text());
}

TEST_F(CheckDnsTest, DkimWrongKeyTypeAndMissing_RFC6376_3_6_1) {
  dns_.add_txt("hk1._domainkey.example.test", "v=DKIM1; k=rsa; p=" + key_->dkim_p());
  auto wrong_k = find(run(), "DKIM", "hk1._domainkey.example.test");
  EXPECT_EQ(wrong_k.status, Status::problem);
  EXPECT_NE(wrong_k.detail.find("k=rsa"), std::string::npos) << wrong_k.line();

  dns_ = dns::FakeResolver();
  auto missing = find(run(), "DKIM", "hk1._domainkey.example.test");
  EXPECT_EQ(missing.status, Status::problem);
  EXPECT_NE(missing.detail.find("no key record"), std::string::npos) << missing.line();
}

TEST_F(CheckDnsTest, DkimTwoRecordsIsAProblem_RFC6376_3_6_2_2) {
  publish_correct_zone();
  auto other = crypto::generate_key(crypto::KeyType::ed25519);
  ASSERT_TRUE(other.ok());
  dns_.add_txt("hk1._domainkey.example.test", dkim_record("hk1", "example.test", other->public_key()).data);
  EXPECT_EQ(find(run(), "DKIM", "hk1._domainkey.example.test").status, Status::problem);
}

TEST_F(CheckDnsTest, DkimUnreadableKeyIsAConfigurationError) {
  publish_correct_zone();
  keys_.clear();
  keys_.emplace("example.test", base::make_error("No such file or directory"));
  auto findings = run();
  EXPECT_EQ(find(findings, "DKIM", "example.test").status, Status::config_error);
  EXPECT_EQ(check_dns_status(findings), 2);
}

TEST_F(CheckDnsTest, DkimOffIsSkipped) {
  publish_correct_zone();
  config_.domains[0].dkim = false;
  keys_.clear();
  auto findings = run();
  EXPECT_EQ(find(findings, "DKIM", "example.test").status, Status::skipped);
  EXPECT_EQ(check_dns_status(findings), 0);
}

TEST_F(CheckDnsTest, DmarcMissingSeveralOrBroken_RFC7489_6_6_3) {
  dns_.add_mx("example.test", 10, "mx.example.test");
  auto missing = find(run(), "DMARC", "_dmarc.example.test");
  EXPECT_EQ(missing.status, Status::problem);
  EXPECT_EQ(missing.publish, dmarc_record("example.test").text());

  dns_.add_txt("_dmarc.example.test", "v=DMARC1; p=reject");
  EXPECT_EQ(find(run(), "DMARC", "_dmarc.example.test").status, Status::ok);
  dns_.add_txt("_dmarc.example.test", "v=DMARC1; p=none");
  auto two = find(run(), "DMARC", "_dmarc.example.test");
  EXPECT_EQ(two.status, Status::problem);
  EXPECT_NE(two.detail.find("2 DMARC records"), std::string::npos) << two.line();

  dns_ = dns::FakeResolver();
  dns_.add_txt("_dmarc.example.test", "v=DMARC1; p=sometimes");
  EXPECT_EQ(find(run(), "DMARC", "_dmarc.example.test").status, Status::problem);
}

TEST_F(CheckDnsTest, PtrNamingAnotherHost_FCrDNS) {
  publish_correct_zone();
  dns_ = dns::FakeResolver();
  dns_.add_a("mx.example.test", "192.0.2.10");
  dns_.add_ptr("192.0.2.10", "vps-1234.hoster.test");
  auto ptr = find(run(), "FCrDNS", "192.0.2.10");
  EXPECT_EQ(ptr.status, Status::problem);
  EXPECT_NE(ptr.detail.find("vps-1234.hoster.test"), std::string::npos) << ptr.line();
  EXPECT_NE(ptr.publish.find("10.2.0.192.in-addr.arpa."), std::string::npos) << ptr.line();
  EXPECT_NE(ptr.publish.find("IN PTR mx.example.test."), std::string::npos) << ptr.line();
}

TEST_F(CheckDnsTest, EveryAddressOfTheHostIsChecked) {
  publish_correct_zone();
  dns_.add_a("mx.example.test", "2001:db8::10");  // no PTR, not in the SPF `mx` … it is: mx covers AAAA too
  auto findings = run();
  EXPECT_EQ(find(findings, "address", "mx.example.test").detail, "192.0.2.10, 2001:db8::10");
  EXPECT_EQ(find(findings, "FCrDNS", "192.0.2.10").status, Status::ok);
  EXPECT_EQ(find(findings, "FCrDNS", "2001:db8::10").status, Status::problem);
  EXPECT_EQ(find(findings, "SPF", "example.test").status, Status::ok);
}

TEST_F(CheckDnsTest, HostWithoutAddressSkipsSpf) {
  publish_correct_zone();
  dns_ = dns::FakeResolver();
  dns_.add_mx("example.test", 10, "mx.example.test");
  dns_.add_txt("example.test", "v=spf1 mx -all");
  auto findings = run();
  auto address = find(findings, "address", "mx.example.test");
  EXPECT_EQ(address.status, Status::problem);
  EXPECT_NE(address.publish.find("mx.example.test."), std::string::npos);
  EXPECT_EQ(find(findings, "SPF", "example.test").status, Status::skipped);
  EXPECT_EQ(check_dns_status(findings), 1);
}

TEST_F(CheckDnsTest, DnsFailureIsNotMissing_RFC7208_2_6_7) {
  publish_correct_zone();
  dns_.set_temp_error("example.test");
  dns_.set_temp_error("_dmarc.example.test");
  dns_.set_temp_error("hk1._domainkey.example.test");
  auto findings = run();
  for (const auto& [check, subject] :
       std::vector<std::pair<std::string, std::string>>{{"MX", "example.test"},
                                                        {"SPF", "example.test"},
                                                        {"DKIM", "hk1._domainkey.example.test"},
                                                        {"DMARC", "_dmarc.example.test"}}) {
    auto f = find(findings, check, subject);
    EXPECT_EQ(f.status, Status::dns_failure) << f.line();
    EXPECT_EQ(f.publish, "") << f.line();
    EXPECT_EQ(f.detail.find("no "), std::string::npos) << f.line();
  }
  EXPECT_EQ(check_dns_status(findings), 1);

  dns::FakeResolver failing;
  failing.set_temp_error("mx.example.test");
  auto host = check_dns_records(config_, keys_, failing, {});
  EXPECT_EQ(find(host, "address", "mx.example.test").status, Status::dns_failure);
}

TEST_F(CheckDnsTest, SrsDomainNeedsMxAndSpf) {
  publish_correct_zone();
  config_.srs.domain = "fwd.example.test";
  auto findings = run();
  auto mx = find(findings, "MX", "fwd.example.test");
  EXPECT_EQ(mx.status, Status::problem);
  EXPECT_EQ(mx.publish, mx_record(config_, "fwd.example.test").text());
  EXPECT_EQ(find(findings, "SPF", "fwd.example.test").status, Status::problem);

  dns_.add_mx("fwd.example.test", 10, "mx.example.test");
  dns_.add_txt("fwd.example.test", "v=spf1 mx -all");
  findings = run();
  EXPECT_EQ(check_dns_status(findings), 0) << all_lines(findings);
  // The [srs] domain that is a [[domain]] is checked once, as a domain.
  config_.srs.domain = "example.test";
  EXPECT_EQ(run().size(), 7u);
}

}  // namespace
}  // namespace hikyaku::admin
