#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "auth/body_hashes_for_test.hpp"
#include "auth/common/message.hpp"
#include "auth/dkim/key_record.hpp"
#include "auth/dkim/signer.hpp"
#include "auth/dkim/verifier.hpp"
#include "base/strings.hpp"
#include "dns/fake_resolver.hpp"

namespace hikyaku::auth::dkim {
namespace {

using std::chrono::system_clock;
// Every verification and signature below also runs over the header section
// with precomputed body hashes and must give the same (body_hashes_for_test.hpp).
using test_support::sign_both;
using test_support::verify_both;

std::string read(const std::string& rel) {
  std::ifstream in(std::string(HIKYAKU_TESTDATA_DIR) + "/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string trim_nl(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r')) s.pop_back();
  return s;
}

system_clock::time_point at(int64_t unix) { return system_clock::time_point(std::chrono::seconds(unix)); }

VerifyOptions opts(int64_t unix = 1700000000) {
  VerifyOptions o;
  o.now = at(unix);
  return o;
}

void add_rfc8463_zone(dns::FakeResolver& r) {
  r.add_txt("brisbane._domainkey.football.example.com",
            "v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  std::string zone = read("dkim-rfc-vectors/rfc8463-A2-dns.zone");
  size_t p = zone.find("test._domainkey");
  size_t q = zone.find('"', p);
  size_t e = zone.find('"', q + 1);
  r.add_txt("test._domainkey.football.example.com", zone.substr(q + 1, e - q - 1));
}

TEST(DkimVerify, Rfc8463A3BothSignaturesPass) {
  dns::FakeResolver r;
  add_rfc8463_zone(r);
  std::string m = common::to_crlf(read("dkim-rfc-vectors/rfc8463-A3-signed.eml"));
  auto results = verify_both(m, r, opts());
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status, Status::pass) << results[0].detail;
  EXPECT_EQ(results[0].algorithm, "ed25519-sha256");
  EXPECT_EQ(results[0].selector, "brisbane");
  EXPECT_EQ(results[1].status, Status::pass) << results[1].detail;
  EXPECT_EQ(results[1].algorithm, "rsa-sha256");
  EXPECT_EQ(results[1].domain, "football.example.com");
  EXPECT_EQ(results[1].key_bits, 1024u);
}

TEST(DkimVerify, Rfc6376Sec6_1_3TamperedBodyFails) {
  dns::FakeResolver r;
  add_rfc8463_zone(r);
  std::string m = common::to_crlf(read("dkim-rfc-vectors/rfc8463-A3-signed.eml"));
  m.replace(m.find("hungry"), 6, "HUNGRY");
  auto results = verify_both(m, r, opts());
  ASSERT_EQ(results.size(), 2u);  // both signatures judged, none dropped
  for (const auto& res : results) {
    EXPECT_EQ(res.status, Status::fail);
    EXPECT_EQ(res.detail, "body hash did not verify");
  }
}

TEST(DkimVerify, Rfc8301Sec3_2MinimumKeyBitsIsConfigurable) {
  dns::FakeResolver r;
  add_rfc8463_zone(r);
  std::string m = common::to_crlf(read("dkim-rfc-vectors/rfc8463-A3-signed.eml"));
  auto o = opts();
  o.min_rsa_bits = 2048;
  auto results = verify_both(m, r, o);
  ASSERT_EQ(results.size(), 2u);
  EXPECT_EQ(results[0].status, Status::pass);
  EXPECT_EQ(results[1].status, Status::policy);
}

TEST(DkimVerify, Rfc6376Sec6_1_2MissingKeyAndTempError) {
  std::string m = common::to_crlf(read("dkim-rfc-vectors/rfc8463-A3-signed.eml"));
  dns::FakeResolver none;
  auto missing = verify_both(m, none, opts());
  ASSERT_EQ(missing.size(), 2u);
  for (const auto& res : missing) EXPECT_EQ(res.status, Status::permerror);
  dns::FakeResolver temp;
  temp.set_temp_error("brisbane._domainkey.football.example.com");
  temp.set_temp_error("test._domainkey.football.example.com");
  auto failed = verify_both(m, temp, opts());
  ASSERT_EQ(failed.size(), 2u);
  for (const auto& res : failed) EXPECT_EQ(res.status, Status::temperror);
}

TEST(DkimVerify, Rfc6376NoSignatureIsNone) {
  dns::FakeResolver r;
  auto res = verify_both(common::to_crlf(read("dkim-rfc-vectors/rfc6376-A1-unsigned.eml")), r, opts());
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].status, Status::none);
}

TEST(DkimVerify, DkimpyExim8463Ed25519Passes) {
  dns::FakeResolver r;
  r.add_txt("sed._domainkey.test.ex", trim_nl(read("dkim-dkimpy/eximtest.dns")));
  auto res = verify_both(common::to_crlf(read("dkim-dkimpy/ed25519test2.msg")), r, opts());
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].status, Status::pass) << res[0].detail;
}

TEST(DkimVerify, Rfc6376Sec6_1_1BadDomainSyntaxIsPermerror) {
  dns::FakeResolver r;
  auto res = verify_both(common::to_crlf(read("dkim-dkimpy/test.message.baddomain")), r, opts());
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].status, Status::permerror);
}

// A signed message with a given key record served for test._domainkey.example.com.
struct KeyCase {
  const char* name;
  const char* record_file;  // from dkim-dkimpy
  Status want;
};

TEST(DkimVerify, Rfc6376Sec3_6_1KeyRecordsTable) {
  auto key = crypto::load_private_key(read("dkim-dkimpy/test.private"));
  ASSERT_TRUE(key.ok());
  std::string msg = common::to_crlf(read("dkim-dkimpy/test.message"));
  SignOptions so;
  so.domain = "example.com";
  so.selector = "test";
  auto sig = sign_both(msg, *key, so, at(1700000000));
  ASSERT_TRUE(sig.ok()) << sig.error().message;
  const KeyCase cases[] = {
      {"good", "test.txt", Status::pass},
      {"no_k_defaults_to_rsa", "test2.txt", Status::pass},
      {"corrupted_p", "test_bad.txt", Status::permerror},
      {"unknown_k", "badk.txt", Status::permerror},
      {"bad_version", "badversion.txt", Status::permerror},
      {"service_tlsrpt_only", "test_tlsrpt.txt", Status::permerror},
  };
  for (const auto& c : cases) {
    dns::FakeResolver r;
    r.add_txt("test._domainkey.example.com", trim_nl(read(std::string("dkim-dkimpy/") + c.record_file)));
    auto res = verify_both(*sig + msg, r, opts());
    ASSERT_EQ(res.size(), 1u);
    EXPECT_EQ(res[0].status, c.want) << c.name << ": " << res[0].detail;
  }
}

// dkimpy's key pairs: every public-key file (SubjectPublicKeyInfo and bare
// RSAPublicKey, PKCS#1 and PKCS#8 private keys) verifies its key's signature.
TEST(DkimVerify, Rfc6376Sec3_6_1BothPublicKeyEncodingsAccepted) {
  struct Pair {
    const char* key_file;
    const char* public_file;
  };
  const Pair pairs[] = {
      {"1024_testkey.key", "1024_testkey_wo_markers.pub.txt"},
      {"1024_testkey.key", "1024_testkey_wo_markers.pub.rsa.txt"},
      {"2048_testkey.key", "2048_testkey_wo_markers.pub.txt"},
      {"2048_testkey.key", "2048_testkey_wo_markers.pub.rsa.txt"},
      {"2048_testkey_PKCS8.key", "2048_testkey_PKCS8.key.pub.txt"},
  };
  std::string msg = common::to_crlf(read("dkim-dkimpy/test.message"));
  for (const auto& pair : pairs) {
    auto key = crypto::load_private_key(read(std::string("dkim-dkimpy/") + pair.key_file));
    ASSERT_TRUE(key.ok()) << pair.key_file;
    SignOptions so{"example.com", "k"};
    auto sig = sign_both(msg, *key, so, at(1700000000));
    ASSERT_TRUE(sig.ok());
    dns::FakeResolver r;
    std::string p = trim_nl(read(std::string("dkim-dkimpy/") + pair.public_file));
    r.add_txt("k._domainkey.example.com", p.starts_with("v=") ? p : "v=DKIM1; k=rsa; p=" + p);
    auto res = verify_both(*sig + msg, r, opts());
    ASSERT_EQ(res.size(), 1u) << pair.public_file;
    EXPECT_EQ(res[0].status, Status::pass) << pair.public_file << ": " << res[0].detail;
  }
}

// RFC 8463 A.3's RSA signature alone (dkimpy's rfc6376.signed.rsa.msg).
TEST(DkimVerify, Rfc8463A3RsaSignatureAlonePasses) {
  dns::FakeResolver r;
  add_rfc8463_zone(r);
  auto res = verify_both(common::to_crlf(read("dkim-dkimpy/rfc6376.signed.rsa.msg")), r, opts());
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].status, Status::pass) << res[0].detail;
  EXPECT_EQ(res[0].algorithm, "rsa-sha256");
}

// dkimpy's other test messages (degenerate folding, extra headers, a
// Windows-1258 From, an mbox message, the Ed25519 round-trip message): what
// we sign over each of them verifies (RFC 6376 §5, §6.1), with the RSA and
// the Ed25519 test keys. test2.message also carries a 2012 gmail.com
// signature whose key is gone; it stays unverifiable, not our concern here.
TEST(DkimSign, Rfc6376Sec5RoundTripOverDkimpyMessages) {
  struct KeyUse {
    const char* key_file;
    const char* record_file;
  };
  const KeyUse keys[] = {{"test.private", "test.txt"}, {"ed25519test.key", "ed25519test.dns"}};
  for (const char* file :
       {"test2.message", "test_extra.message", "rfc6376.w1258.msg", "message.mbox", "ed25519test.msg"}) {
    std::string msg = common::to_crlf(read(std::string("dkim-dkimpy/") + file));
    ASSERT_FALSE(msg.empty()) << file;
    for (const auto& k : keys) {
      auto key = crypto::load_private_key(read(std::string("dkim-dkimpy/") + k.key_file));
      ASSERT_TRUE(key.ok()) << k.key_file;
      SignOptions so{"example.com", "test"};
      auto sig = sign_both(msg, *key, so, at(1700000000));
      ASSERT_TRUE(sig.ok()) << file << ": " << sig.error().message;
      dns::FakeResolver r;
      r.add_txt("test._domainkey.example.com", trim_nl(read(std::string("dkim-dkimpy/") + k.record_file)));
      auto res = verify_both(*sig + msg, r, opts());
      ASSERT_FALSE(res.empty());
      EXPECT_EQ(res[0].status, Status::pass) << file << " with " << k.key_file << ": " << res[0].detail;
    }
  }
}

// Build a signature field by hand (for algorithms and tags our signer never uses).
std::string hand_signed(const std::string& msg, const crypto::PrivateKey& key, Algorithm a,
                        const std::vector<std::pair<std::string, std::string>>& extra, const std::string& h,
                        common::Canonicalization c = common::Canonicalization::relaxed) {
  auto parsed = common::parse_message(msg);
  common::BodyHasher body(c, hash_of(a));
  body.update(parsed.body);
  std::vector<std::pair<std::string, std::string>> tags = {
      {"v", "1"}, {"a", std::string(algorithm_name(a))},
      {"c", std::string(common::canonicalization_name(c)) + "/" + std::string(common::canonicalization_name(c))},
      {"d", "example.com"}, {"s", "test"}};
  for (auto& e : extra) tags.push_back(e);
  tags.push_back({"h", h});
  tags.push_back({"bh", base::base64_encode(body.finish())});
  tags.push_back({"b", ""});
  std::vector<std::string> names;
  for (auto n : base::split(h, ':')) names.emplace_back(n);
  return *sign_field("DKIM-Signature", tags, select_headers(parsed, names), c, key, a);
}

struct PolicyCase {
  const char* name;
  Algorithm a;
  std::vector<std::pair<std::string, std::string>> extra;
  const char* h;
  const char* record;
  Status want;
};

TEST(DkimVerify, Rfc6376Sec6_1_1SignatureChecksTable) {
  auto key = crypto::load_private_key(read("dkim-dkimpy/test.private"));
  ASSERT_TRUE(key.ok());
  std::string record = trim_nl(read("dkim-dkimpy/test.txt"));
  std::string p = record.substr(record.find("p="));
  std::string msg = common::to_crlf(read("dkim-dkimpy/test.message"));
  const PolicyCase cases[] = {
      {"rfc8301_sec3_1_rsa_sha1_is_policy", Algorithm::rsa_sha1, {}, "from:to:subject", nullptr, Status::policy},
      {"simple_ok", Algorithm::rsa_sha256, {}, "from:subject", nullptr, Status::pass},
      {"from_not_signed", Algorithm::rsa_sha256, {}, "to:subject", nullptr, Status::permerror},
      {"i_outside_d", Algorithm::rsa_sha256, {{"i", "@other.com"}}, "from", nullptr, Status::permerror},
      {"i_subdomain_ok", Algorithm::rsa_sha256, {{"i", "u@sub.example.com"}}, "from", nullptr, Status::pass},
      {"t_s_forbids_subdomain", Algorithm::rsa_sha256, {{"i", "u@sub.example.com"}}, "from", "t=s", Status::permerror},
      {"expired", Algorithm::rsa_sha256, {{"t", "1600000000"}, {"x", "1600000100"}}, "from", nullptr,
       Status::permerror},
      {"not_expired", Algorithm::rsa_sha256, {{"t", "1700000000"}, {"x", "1800000000"}}, "from", nullptr,
       Status::pass},
      {"key_h_sha1_only", Algorithm::rsa_sha256, {}, "from", "h=sha1", Status::permerror},
      {"key_h_sha256_ok", Algorithm::rsa_sha256, {}, "from", "h=sha1:sha256", Status::pass},
      {"key_k_mismatch", Algorithm::ed25519_sha256, {}, "from", nullptr, Status::permerror},
      {"q_other", Algorithm::rsa_sha256, {{"q", "http/get"}}, "from", nullptr, Status::permerror},
  };
  for (const auto& c : cases) {
    std::string sig;
    if (c.a == Algorithm::ed25519_sha256) {
      auto ek = crypto::generate_key(crypto::KeyType::ed25519);
      sig = hand_signed(msg, *ek, c.a, c.extra, c.h);
    } else {
      sig = hand_signed(msg, *key, c.a, c.extra, c.h);
    }
    dns::FakeResolver r;
    r.add_txt("test._domainkey.example.com",
              std::string("v=DKIM1; k=rsa; ") + (c.record ? std::string(c.record) + "; " : "") + p);
    auto res = verify_both(sig + msg, r, opts());
    ASSERT_EQ(res.size(), 1u);
    EXPECT_EQ(res[0].status, c.want) << c.name << ": " << res[0].detail;
  }
}

TEST(DkimVerify, Rfc6376Sec8_2BodyLengthFlagsAppendedContent) {
  auto key = crypto::load_private_key(read("dkim-dkimpy/test.private"));
  std::string record = trim_nl(read("dkim-dkimpy/test.txt"));
  std::string msg = "From: a@example.com\r\nSubject: x\r\n\r\nsigned part\r\n";
  std::string sig = hand_signed(msg, *key, Algorithm::rsa_sha256, {{"l", "13"}}, "from:subject");
  dns::FakeResolver r;
  r.add_txt("test._domainkey.example.com", record);
  auto res = verify_both(sig + msg, r, opts());
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].status, Status::pass);
  EXPECT_FALSE(res[0].unsigned_content);
  res = verify_both(sig + msg + "appended by an attacker\r\n", r, opts());
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].status, Status::pass);
  EXPECT_TRUE(res[0].unsigned_content);
}

TEST(DkimSign, Rfc6376Sec5RoundTripRsaAndEd25519) {
  for (auto type : {crypto::KeyType::rsa, crypto::KeyType::ed25519}) {
    auto key = crypto::generate_key(type);
    ASSERT_TRUE(key.ok());
    std::string msg = common::to_crlf(
        "From: Joe <joe@example.com>\nTo: a@b.example\nSubject: folded\n  subject line  \nDate: today\n\n"
        "body  with   spaces  \n\n\n");
    SignOptions so{"example.com", "sel"};
    so.expire_after = std::chrono::seconds(3600);
    auto sig = sign_both(msg, *key, so, at(1700000000));
    ASSERT_TRUE(sig.ok());
    EXPECT_NE(sig->find("h=from:from:subject:date:to;"), std::string::npos) << *sig;
    EXPECT_NE(sig->find("t=1700000000"), std::string::npos);
    EXPECT_NE(sig->find("x=1700003600"), std::string::npos);
    dns::FakeResolver r;
    r.add_txt("sel._domainkey.example.com", format_key_record(key->public_key()));
    auto res = verify_both(*sig + msg, r, opts());
    ASSERT_EQ(res.size(), 1u);
    EXPECT_EQ(res[0].status, Status::pass) << res[0].detail;
    // RFC 6376 §5.4.2 over-signing: an added From breaks the signature.
    res = verify_both(*sig + "From: evil@example.net\r\n" + msg, r, opts());
    ASSERT_EQ(res.size(), 1u);
    EXPECT_EQ(res[0].status, Status::fail);
    // Expired an hour later (x=).
    res = verify_both(*sig + msg, r, opts(1700003601));
    ASSERT_EQ(res.size(), 1u);
    EXPECT_EQ(res[0].status, Status::permerror);
  }
}

TEST(DkimSign, Rfc6376Sec5_4FromRequired) {
  auto key = crypto::load_private_key(read("dkim-dkimpy/test.private"));
  SignOptions so{"example.com", "test"};
  auto sig = sign_both(common::to_crlf(read("dkim-dkimpy/test_nofrom.message")), *key, so, at(1));
  EXPECT_FALSE(sig.ok());
}

TEST(DkimKeyRecord, Rfc6376Sec3_6_1Parse) {
  auto rec = parse_key_record("v=DKIM1; k=ed25519; t=y:s; s=email; h=sha256; p=abc");
  ASSERT_TRUE(rec.ok());
  EXPECT_TRUE(rec->testing);
  EXPECT_TRUE(rec->strict);
  EXPECT_EQ(rec->k, crypto::KeyType::ed25519);
  EXPECT_FALSE(parse_key_record("k=rsa; v=DKIM1; p=abc").ok());  // v= must be first
  EXPECT_FALSE(parse_key_record("v=DKIM1; k=rsa").ok());          // p= required
}

}  // namespace
}  // namespace hikyaku::auth::dkim
