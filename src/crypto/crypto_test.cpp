#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "base/strings.hpp"
#include "crypto/hash.hpp"
#include "crypto/key.hpp"

namespace hikyaku::crypto {
namespace {

std::string read(const std::string& rel) {
  std::ifstream in(std::string(HIKYAKU_TESTDATA_DIR) + "/" + rel, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The p= value of a whole key record file.
std::string p_of(const std::string& record) { return record.substr(record.find("p=") + 2); }

std::string hex(std::string_view s) {
  static const char* k = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) { out += k[c >> 4]; out += k[c & 15]; }
  return out;
}

TEST(Hash, Fips180KnownAnswers) {
  EXPECT_EQ(hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(hex(sha1("abc")), "a9993e364706816aba3e25717850c26c9cd0d89d");
  Hasher h(HashAlgorithm::sha256);
  h.update("a");
  h.update("bc");
  EXPECT_EQ(hex(h.finish()), hex(sha256("abc")));
  EXPECT_EQ(hex(h.finish()), hex(sha256("")));  // reset after finish
}

TEST(Key, Rfc8463A1SeedGivesPublishedPublicKey) {
  auto key = load_private_key(read("dkim-rfc-vectors/rfc8463-A1-brisbane-ed25519.seed.b64"));
  ASSERT_TRUE(key.ok()) << key.error().message;
  EXPECT_EQ(key->type(), KeyType::ed25519);
  EXPECT_EQ(key->public_key().dkim_p(), "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=");
  auto pem = load_private_key(read("dkim-rfc-vectors/rfc8463-A1-brisbane-ed25519.pkcs8.pem"));
  ASSERT_TRUE(pem.ok());
  EXPECT_EQ(pem->public_key().dkim_p(), key->public_key().dkim_p());
}

TEST(Key, PemPkcs1AndPkcs8) {
  auto k1 = load_private_key(read("dkim-dkimpy/2048_testkey.key"));
  ASSERT_TRUE(k1.ok()) << k1.error().message;
  EXPECT_EQ(k1->bits(), 2048u);
  auto k8 = load_private_key(read("dkim-dkimpy/2048_testkey_PKCS8.key"));
  ASSERT_TRUE(k8.ok()) << k8.error().message;
  EXPECT_EQ(k8->type(), KeyType::rsa);
  auto k1024 = load_private_key(read("dkim-dkimpy/1024_testkey.key"));
  ASSERT_TRUE(k1024.ok());
  EXPECT_EQ(k1024->bits(), 1024u);
}

TEST(Key, Rfc6376Sec3_6_1BothPublicKeyEncodings) {
  auto spki = parse_dkim_public_key(KeyType::rsa, p_of(read("dkim-dkimpy/1024_testkey_wo_markers.pub.txt")));
  ASSERT_TRUE(spki.ok()) << spki.error().message;
  auto bare = parse_dkim_public_key(KeyType::rsa, p_of(read("dkim-dkimpy/1024_testkey_wo_markers.pub.rsa.txt")));
  ASSERT_TRUE(bare.ok()) << bare.error().message;
  EXPECT_EQ(spki->dkim_p(), bare->dkim_p());
  EXPECT_EQ(bare->bits(), 1024u);
  EXPECT_FALSE(parse_dkim_public_key(KeyType::rsa, "AAAA").ok());
  EXPECT_FALSE(parse_dkim_public_key(KeyType::rsa, "").ok());
  EXPECT_FALSE(parse_dkim_public_key(KeyType::ed25519, "!!").ok());
}

TEST(Key, SignVerifyRoundTripRsaAndEd25519) {
  for (KeyType t : {KeyType::rsa, KeyType::ed25519}) {
    auto key = generate_key(t);
    ASSERT_TRUE(key.ok()) << key.error().message;
    auto pub = parse_dkim_public_key(t, key->public_key().dkim_p());
    ASSERT_TRUE(pub.ok()) << pub.error().message;
    std::string d = sha256("message");
    auto sig = sign_digest(*key, HashAlgorithm::sha256, d);
    ASSERT_TRUE(sig.ok()) << sig.error().message;
    EXPECT_TRUE(verify_digest(*pub, HashAlgorithm::sha256, d, *sig));
    EXPECT_FALSE(verify_digest(*pub, HashAlgorithm::sha256, sha256("other"), *sig));
    auto reloaded = load_private_key(key->to_pem());
    ASSERT_TRUE(reloaded.ok());
    EXPECT_EQ(reloaded->public_key().dkim_p(), key->public_key().dkim_p());
  }
  EXPECT_EQ(generate_key(KeyType::rsa)->bits(), 2048u);
  EXPECT_FALSE(generate_key(KeyType::rsa, 512).ok());
}

TEST(Key, BadInputIsAnError) {
  EXPECT_FALSE(load_private_key("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n").ok());
  EXPECT_FALSE(load_private_key("c2hvcnQ=").ok());
  EXPECT_FALSE(load_private_key("not base64!").ok());
}

}  // namespace
}  // namespace hikyaku::crypto
