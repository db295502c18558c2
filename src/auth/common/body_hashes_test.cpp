// BodyHashes (body_hashes.hpp): fed in chunks of any size it gives what
// one BodyHasher over the whole body gives (RFC 6376 §3.4.3–§3.4.5, §3.7),
// and a key it was not asked for is an error value, never a digest of
// nothing.
#include "auth/common/body_hashes.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace hikyaku::auth::common {
namespace {

BodyHash reference(std::string_view body, const BodyHashKey& key) {
  BodyHasher h(key.canonicalization, key.algorithm, key.limit);
  h.update(body);
  BodyHash out;
  out.digest = h.finish();
  out.canonical_length = h.canonical_length();
  return out;
}

struct BodyCase {
  const char* name;
  std::string body;
};

std::vector<BodyCase> bodies() {
  std::string big;
  std::mt19937 rng(42);  // fixed seed: the same bytes on every run
  const char alphabet[] = "ab \t\r\n\r\n";
  for (int k = 0; k < 20000; ++k) big += alphabet[rng() % (sizeof alphabet - 1)];
  return {
      {"empty", ""},
      {"only_crlf", "\r\n"},
      {"only_empty_lines", "\r\n\r\n\r\n"},
      {"no_final_crlf", "abc"},
      {"one_line", "abc\r\n"},
      {"trailing_empty_lines", "line\r\n\r\n\r\n\r\n"},        // RFC 6376 §3.4.3/§3.4.4
      {"empty_lines_inside", "a\r\n\r\n\r\nb\r\n\r\n"},
      {"trailing_whitespace", "line  \t \r\n\tx\t\r\n \r\n\t\r\n"},  // §3.4.4 relaxed
      {"inner_whitespace_runs", " lead  and   inner \t runs  \r\n"},
      {"whitespace_only_lines", "  \r\n\t\r\n \t \r\n"},
      {"bare_cr_and_lf", "a\rb\nc\r\n\rd\r"},
      {"trailing_cr", "abc\r"},
      {"long_line", std::string(10000, 'x') + "   \r\n"},
      {"random_crlf_and_whitespace", big},
  };
}

std::vector<BodyHashKey> keys() {
  std::vector<BodyHashKey> out;
  for (auto c : {Canonicalization::simple, Canonicalization::relaxed})
    for (auto a : {crypto::HashAlgorithm::sha256, crypto::HashAlgorithm::sha1})
      for (std::optional<uint64_t> l : {std::optional<uint64_t>(), std::optional<uint64_t>(0),
                                        std::optional<uint64_t>(1), std::optional<uint64_t>(5),
                                        std::optional<uint64_t>(13), std::optional<uint64_t>(100000)})
        out.push_back({c, a, l});
  return out;
}

// RFC 6376 §3.4.5 / §3.7: chunking never changes a digest or the
// canonical length (which the verifier compares with l=).
TEST(BodyHashes, Rfc6376Sec3_7ChunkedEqualsWhole) {
  const auto ks = keys();
  for (const auto& b : bodies()) {
    for (size_t chunk : {size_t(1), size_t(2), size_t(3), size_t(7), size_t(4096), size_t(0)}) {
      auto hashes = BodyHashes::of(b.body, ks, chunk);
      for (const auto& k : ks) {
        const BodyHash* got = hashes.find(k);
        ASSERT_NE(got, nullptr) << b.name << " " << body_hash_key_name(k);
        BodyHash want = reference(b.body, k);
        EXPECT_EQ(got->digest, want.digest) << b.name << " chunk " << chunk << " " << body_hash_key_name(k);
        EXPECT_EQ(got->canonical_length, want.canonical_length)
            << b.name << " chunk " << chunk << " " << body_hash_key_name(k);
      }
    }
  }
}

// CR and LF of one line end in different chunks, at every split point.
TEST(BodyHashes, Rfc6376Sec3_4CrLfSplitAcrossChunks) {
  const std::string body = "a \r\n\r\n b\t\r\n  \r\n\r\n";
  const auto ks = keys();
  for (size_t cut = 0; cut <= body.size(); ++cut) {
    BodyHashes hashes;
    for (const auto& k : ks) hashes.want(k);
    hashes.update(body.substr(0, cut));
    hashes.update("");  // empty chunks are harmless
    hashes.update(body.substr(cut));
    hashes.finish();
    for (const auto& k : ks) {
      BodyHash want = reference(body, k);
      ASSERT_NE(hashes.find(k), nullptr);
      EXPECT_EQ(hashes.find(k)->digest, want.digest) << "cut " << cut << " " << body_hash_key_name(k);
      EXPECT_EQ(hashes.find(k)->canonical_length, want.canonical_length) << "cut " << cut;
    }
  }
}

TEST(BodyHashes, RandomChunkBoundaries) {
  const auto ks = keys();
  const std::string body = bodies().back().body;
  std::mt19937 rng(7);
  for (int round = 0; round < 20; ++round) {
    BodyHashes hashes;
    for (const auto& k : ks) hashes.want(k);
    for (size_t at = 0; at < body.size();) {
      size_t n = 1 + rng() % 300;
      hashes.update(std::string_view(body).substr(at, n));
      at += n;
    }
    hashes.finish();
    for (const auto& k : ks) {
      ASSERT_NE(hashes.find(k), nullptr);
      EXPECT_EQ(hashes.find(k)->digest, reference(body, k).digest) << "round " << round;
    }
  }
}

TEST(BodyHashes, DuplicateWantsAreOneAndKeysAreDistinct) {
  BodyHashes hashes;
  BodyHashKey relaxed{Canonicalization::relaxed, crypto::HashAlgorithm::sha256, std::nullopt};
  BodyHashKey limited{Canonicalization::relaxed, crypto::HashAlgorithm::sha256, 3};
  hashes.want(relaxed);
  hashes.want(relaxed);
  hashes.want(limited);
  hashes.update("abcdef\r\n");
  hashes.finish();
  hashes.finish();  // idempotent
  ASSERT_NE(hashes.find(relaxed), nullptr);
  ASSERT_NE(hashes.find(limited), nullptr);
  EXPECT_EQ(hashes.find(relaxed)->digest, crypto::sha256("abcdef\r\n"));
  EXPECT_EQ(hashes.find(limited)->digest, crypto::sha256("abc"));  // RFC 6376 §3.4.5
  EXPECT_EQ(hashes.find(limited)->canonical_length, 8u);
  EXPECT_EQ(hashes.find({Canonicalization::simple, crypto::HashAlgorithm::sha256, std::nullopt}), nullptr);
  // Ordered, for std::map: no l= first, then by l=.
  EXPECT_NE(relaxed, limited);
  EXPECT_LT(relaxed, limited);
  EXPECT_LT(limited, (BodyHashKey{Canonicalization::relaxed, crypto::HashAlgorithm::sha256, 4}));
}

TEST(BodyHashes, NothingBeforeFinishAndNoLateWants) {
  BodyHashKey k{Canonicalization::simple, crypto::HashAlgorithm::sha256, std::nullopt};
  BodyHashKey late{Canonicalization::relaxed, crypto::HashAlgorithm::sha1, std::nullopt};
  BodyHashes hashes;
  hashes.want(k);
  hashes.update("x\r\n");
  EXPECT_EQ(hashes.find(k), nullptr);  // not finished
  EXPECT_FALSE(hashes.finished());
  hashes.want(late);  // would have missed "x\r\n": not computed
  hashes.finish();
  EXPECT_TRUE(hashes.finished());
  EXPECT_NE(hashes.find(k), nullptr);
  EXPECT_EQ(hashes.find(late), nullptr);
}

TEST(BodyHash, FromBodyWhenNotPrecomputed) {
  std::string msg = "From: a@example.com\r\n\r\nbody  \r\n\r\n";
  auto parsed = parse_message(msg);
  for (const auto& k : keys()) {
    auto got = body_hash(parsed, k);
    ASSERT_TRUE(got.ok());
    BodyHash want = reference(parsed.body, k);
    EXPECT_EQ(got->digest, want.digest) << body_hash_key_name(k);
    EXPECT_EQ(got->canonical_length, want.canonical_length);
  }
}

TEST(BodyHash, PrecomputedIsUsedAndAMissingKeyIsAnError) {
  const std::string body = "the body\r\n";
  BodyHashKey have{Canonicalization::relaxed, crypto::HashAlgorithm::sha256, std::nullopt};
  BodyHashKey missing{Canonicalization::simple, crypto::HashAlgorithm::sha1, 5};
  const BodyHashKey wanted[] = {have};
  auto hashes = BodyHashes::of(body, wanted);
  std::string headers = "From: a@example.com\r\n\r\n";
  auto parsed = parse_message(headers);
  parsed.body_hashes = &hashes;
  auto got = body_hash(parsed, have);
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->digest, reference(body, have).digest);  // not the empty body's
  auto err = body_hash(parsed, missing);
  ASSERT_FALSE(err.ok());
  EXPECT_EQ(err.error().message, "body hash not available (simple/sha1/l=5)");
  // Not finished: nothing is available either.
  BodyHashes unfinished;
  unfinished.want(have);
  unfinished.update(body);
  parsed.body_hashes = &unfinished;
  EXPECT_FALSE(body_hash(parsed, have).ok());
}

}  // namespace
}  // namespace hikyaku::auth::common
