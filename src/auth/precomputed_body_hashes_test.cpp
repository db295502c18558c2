// Precomputed body hashes end to end (common::BodyHashes through
// ParsedMessage::body_hashes, SignOptions/SealOptions::body_hashes and
// inbound::Input::body_hashes): inbound::body_hash_keys() lists what the
// verifiers and our signers need within the verifiers' limits (RFC 6376
// §3.5 c=/a=/l=, RFC 8617 §4.2.1), a message checked from its header section
// gives what the whole message gives, and a missing key is a defined error
// (temperror, a failed chain, a signing error), never a crash nor a hash of
// the empty body. The vectors of dkim_test, interop_test, arc_test and
// stalwart_suite_test go through the same comparison there
// (body_hashes_for_test.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <string>
#include <vector>

#include "auth/arc/sealer.hpp"
#include "auth/arc/validator.hpp"
#include "auth/body_hashes_for_test.hpp"
#include "auth/common/authentication_results.hpp"
#include "auth/common/body_hashes.hpp"
#include "auth/common/message.hpp"
#include "auth/dkim/key_record.hpp"
#include "auth/dkim/signer.hpp"
#include "auth/dkim/verifier.hpp"
#include "auth/inbound/checker.hpp"
#include "crypto/key.hpp"
#include "dns/fake_resolver.hpp"

namespace hikyaku::auth {
namespace {

using common::BodyHashKey;
using common::Canonicalization;
using crypto::HashAlgorithm;

constexpr auto kNow = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
constexpr BodyHashKey kOurs{Canonicalization::relaxed, HashAlgorithm::sha256, std::nullopt};

dkim::VerifyOptions verify_options() {
  dkim::VerifyOptions o;
  o.now = kNow;
  return o;
}

std::string sig_field(const std::string& name, const std::string& tags) {
  return name + ": " + tags + "; d=example.com; s=sel; h=from; bh=AAAA; b=AAAA\r\n";
}

TEST(BodyHashKeys, Rfc6376Sec3_5OnePerSignatureAndOurOwn) {
  std::string headers =
      sig_field("DKIM-Signature", "v=1; a=rsa-sha1; c=simple/simple; l=10") +
      sig_field("DKIM-Signature", "v=1; a=rsa-sha256; c=relaxed/simple") +            // body: simple
      sig_field("DKIM-Signature", "v=1; a=ed25519-sha256; c=simple/simple; l=10") +  // = first, sha256
      sig_field("DKIM-Signature", "v=1; a=rsa-sha256; c=simple/simple") +            // same as second
      sig_field("DKIM-Signature", "v=2; a=rsa-sha256; c=simple/relaxed") +           // does not parse
      "From: a@example.com\r\n\r\n";
  auto keys = inbound::body_hash_keys(common::parse_message(headers));
  const std::vector<BodyHashKey> want = {
      {Canonicalization::simple, HashAlgorithm::sha1, 10},
      {Canonicalization::simple, HashAlgorithm::sha256, std::nullopt},
      {Canonicalization::simple, HashAlgorithm::sha256, 10},
      kOurs,  // relaxed/sha256: dkim::sign and arc::seal, RSA and Ed25519 alike (RFC 8463 §3)
  };
  EXPECT_EQ(keys, want);
  EXPECT_EQ(dkim::signing_body_hash_key(crypto::KeyType::rsa), kOurs);
  EXPECT_EQ(dkim::signing_body_hash_key(crypto::KeyType::ed25519), kOurs);
  // No signature at all: our own key only.
  EXPECT_EQ(inbound::body_hash_keys(common::parse_message("From: a@example.com\r\n\r\n")),
            std::vector<BodyHashKey>{kOurs});
}

// The verifier checks at most max_signatures DKIM signatures (10 by default).
TEST(BodyHashKeys, OnlyTheSignaturesTheVerifierChecks) {
  std::string headers;
  for (int l = 1; l <= 12; ++l) headers += sig_field("DKIM-Signature", "v=1; a=rsa-sha256; l=" + std::to_string(l));
  headers += "From: a@example.com\r\n\r\n";
  auto parsed = common::parse_message(headers);
  auto keys = inbound::body_hash_keys(parsed);
  ASSERT_EQ(keys.size(), 11u);  // l=1..10 and ours
  EXPECT_EQ(keys[9], (BodyHashKey{Canonicalization::simple, HashAlgorithm::sha256, 10}));
  EXPECT_EQ(keys[10], kOurs);
  dkim::VerifyOptions three;
  three.max_signatures = 3;
  EXPECT_EQ(inbound::body_hash_keys(parsed, three).size(), 4u);
}

// RFC 8617 §5.2: AMSs of a sound chain (the validator checks them all for
// oldest-pass); none of a structurally broken one, which fails unchecked.
TEST(BodyHashKeys, Rfc8617Sec5_2ArcMessageSignaturesOfASoundChain) {
  auto set = [](int i, const std::string& ams_tags) {
    std::string n = std::to_string(i);
    return "ARC-Seal: i=" + n + "; a=rsa-sha256; cv=" + (i == 1 ? "none" : "pass") +
           "; d=example.com; s=sel; b=AAAA\r\n" +
           sig_field("ARC-Message-Signature", "i=" + n + "; a=rsa-sha256; " + ams_tags) +
           "ARC-Authentication-Results: i=" + n + "; mx.example.com; spf=pass\r\n";
  };
  std::string chain = set(2, "c=relaxed/simple; l=7") + set(1, "c=simple/simple");
  auto keys = inbound::body_hash_keys(common::parse_message(chain + "From: a@example.com\r\n\r\n"));
  const std::vector<BodyHashKey> want = {
      {Canonicalization::simple, HashAlgorithm::sha256, std::nullopt},  // i=1
      {Canonicalization::simple, HashAlgorithm::sha256, 7},            // i=2
      kOurs,
  };
  EXPECT_EQ(keys, want);
  // Instance 1 missing: the chain fails before any AMS is verified.
  auto broken = inbound::body_hash_keys(common::parse_message(set(2, "c=simple/simple") + "From: a@x.test\r\n\r\n"));
  EXPECT_EQ(broken, std::vector<BodyHashKey>{kOurs});
}

struct Signed {
  dns::FakeResolver dns;
  crypto::PrivateKey key = crypto::generate_key(crypto::KeyType::ed25519).value();
  std::string message;

  explicit Signed(const std::string& body) {
    dns.add_txt("sel._domainkey.example.com", dkim::format_key_record(key.public_key()));
    std::string m = "From: Ann <ann@example.com>\r\nTo: bob@example.net\r\nSubject: big\r\n\r\n" + body;
    dkim::SignOptions o{"example.com", "sel"};
    message = dkim::sign(m, key, o, kNow).value() + m;
  }
};

// The case this is for: a body over 1 MiB read in chunks, never in memory
// together with the header section.
TEST(PrecomputedBodyHashes, Rfc6376Sec6_1_3LargeBodyInChunksVerifies) {
  std::string body;
  for (int k = 0; body.size() < (3u << 20) / 2; ++k) body += "line " + std::to_string(k) + " \t with  spaces  \r\n";
  body += "\r\n\r\n";
  Signed s(body);
  auto whole = test_support::verify_both(s.message, s.dns, verify_options());
  ASSERT_EQ(whole.size(), 1u);
  EXPECT_EQ(whole[0].status, dkim::Status::pass) << whole[0].detail;
  // The body altered: both paths fail alike.
  std::string altered = s.message;
  altered[altered.size() - 10] = 'X';
  auto failed = test_support::verify_both(altered, s.dns, verify_options());
  ASSERT_EQ(failed.size(), 1u);
  EXPECT_EQ(failed[0].status, dkim::Status::fail);
  EXPECT_EQ(failed[0].detail, "body hash did not verify");
}

// A BodyHashes without the key is a caller bug: temperror with a reason.
TEST(PrecomputedBodyHashes, MissingKeyIsTemperrorNotAPass) {
  Signed s("Hello.\r\n");
  std::string headers(test_support::header_section(s.message));
  auto parsed = common::parse_message(headers);
  common::BodyHashes nothing;
  nothing.finish();
  parsed.body_hashes = &nothing;
  auto res = dkim::verify(parsed, s.dns, verify_options());
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].status, dkim::Status::temperror);
  EXPECT_EQ(res[0].detail, "body hash not available (relaxed/sha256)");
  // Wanted but never finished: the same.
  common::BodyHashes unfinished;
  unfinished.want(kOurs);
  unfinished.update(test_support::body_of(s.message));
  parsed.body_hashes = &unfinished;
  res = dkim::verify(parsed, s.dns, verify_options());
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].status, dkim::Status::temperror);
  // And through inbound::check(): dkim=temperror in Authentication-Results.
  inbound::Input in{headers, std::string("ann@example.com"), "h", "192.0.2.1", &nothing};
  inbound::Options o;
  o.authserv_id = "mx.example.net";
  o.now = kNow;
  auto v = inbound::check(s.dns, in, o);
  ASSERT_EQ(v.dkim.size(), 1u);
  EXPECT_EQ(v.dkim[0].status, dkim::Status::temperror);
  EXPECT_NE(v.results.value().find("dkim=temperror"), std::string::npos) << v.results.value();
}

TEST(PrecomputedBodyHashes, MissingKeyFailsSigningAndSealing) {
  Signed s("Hello.\r\n");
  std::string headers(test_support::header_section(s.message));
  common::BodyHashes other;  // a key, but not ours
  other.want({Canonicalization::simple, HashAlgorithm::sha256, std::nullopt});
  other.finish();
  dkim::SignOptions so{"example.com", "sel"};
  so.body_hashes = &other;
  auto sig = dkim::sign(headers, s.key, so, kNow);
  ASSERT_FALSE(sig.ok());
  EXPECT_EQ(sig.error().message, "body hash not available (relaxed/sha256)");
  arc::SealOptions seal_options;
  seal_options.body_hashes = &other;
  auto sealed = arc::seal(headers, "mx.example.net; arc=none", "example.com", "sel", s.key, kNow, seal_options);
  ASSERT_FALSE(sealed.ok());
  EXPECT_EQ(sealed.error().message, "body hash not available (relaxed/sha256)");
}

TEST(PrecomputedBodyHashes, Rfc8617Sec5_2MissingKeyFailsTheChainWithAReason) {
  Signed s("Hello.\r\n");
  auto set = arc::seal(s.message, "mx.example.net; arc=none", "example.com", "sel", s.key, kNow).value();
  std::string sealed = set.prefix() + s.message;
  auto ok = test_support::validate_both(sealed, s.dns, verify_options());
  EXPECT_EQ(ok.status, arc::ChainStatus::pass) << ok.reason;
  std::string headers(test_support::header_section(sealed));
  auto parsed = common::parse_message(headers);
  common::BodyHashes nothing;
  nothing.finish();
  parsed.body_hashes = &nothing;
  auto v = arc::validate(parsed, s.dns, verify_options());
  EXPECT_EQ(v.status, arc::ChainStatus::fail);
  EXPECT_EQ(v.reason, "ARC-Message-Signature i=1: body hash not available (relaxed/sha256)");
}

// inbound::check() from the header section with precomputed hashes gives
// the verdict of the whole message: DKIM pass and fail, ARC, DMARC, AR.
TEST(PrecomputedBodyHashes, InboundCheckFromHeaderSectionMatchesWholeMessage) {
  Signed s("Hello.\r\n\r\n");
  s.dns.add_txt("example.com", "v=spf1 ip4:192.0.2.1 -all");
  s.dns.add_txt("_dmarc.example.com", "v=DMARC1; p=reject");
  auto set = arc::seal(s.message, "mx.example.net; arc=none", "example.com", "sel", s.key, kNow).value();
  const std::string received = "Received: from client by mx.example.org; x\r\n";
  inbound::Options o;
  o.authserv_id = "mx.example.org";
  o.now = kNow;
  std::string altered = s.message;
  altered.replace(altered.find("Hello."), 6, "Hallo.");
  for (const std::string& m : {received + set.prefix() + s.message, received + altered}) {
    inbound::Input whole_in{m, std::string("ann@example.com"), "h", "192.0.2.1"};
    auto whole = inbound::check(s.dns, whole_in, o);
    auto hashes = test_support::precomputed(m, 7);
    const std::string head = std::string(test_support::header_section(m));  // Input holds a view: keep it alive
    inbound::Input pre_in{head, std::string("ann@example.com"), "h", "192.0.2.1", &hashes};
    auto pre = inbound::check(s.dns, pre_in, o);
    EXPECT_EQ(pre.results.value(), whole.results.value());
    ASSERT_EQ(pre.dkim.size(), whole.dkim.size());
    for (size_t k = 0; k < pre.dkim.size(); ++k) test_support::expect_same(whole.dkim[k], pre.dkim[k], k);
    EXPECT_EQ(pre.arc.reason, whole.arc.reason);
    EXPECT_EQ(pre.dmarc_reject(), whole.dmarc_reject());
  }
  // Sanity: the first passed everything, the second failed DKIM.
  const std::string first_message = received + set.prefix() + s.message;  // Input holds a view: keep it alive
  inbound::Input first{first_message, std::string("ann@example.com"), "h", "192.0.2.1"};
  auto v = inbound::check(s.dns, first, o);
  EXPECT_EQ(v.dkim.at(0).status, dkim::Status::pass);
  EXPECT_EQ(v.arc.status, arc::ChainStatus::pass) << v.arc.reason;
}

}  // namespace
}  // namespace hikyaku::auth
