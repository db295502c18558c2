// Purpose:   Test support, not linked into the server: run a DKIM/ARC
//            verification, signing or sealing twice, over the whole message
//            and over its header section alone with precomputed body hashes
//            (keys from inbound::body_hash_keys(), body fed in 4 KiB chunks),
//            and expect the same outcome. Shared by the auth unit tests so
//            that every vector they check also checks the precomputed path.
//            Header-only so the auth library does not carry it.
// Standards: RFC 6376 §3.7 and RFC 8617 §4.1.2 (the body hash), via the
//            code under test.
// Trust:     test code.
// Concurrency: one test thread.
// Errors:    mismatches are GoogleTest failures (EXPECT); each helper
//            returns the whole-message outcome, so callers assert as before.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "auth/arc/sealer.hpp"
#include "auth/arc/validator.hpp"
#include "auth/common/body_hashes.hpp"
#include "auth/common/message.hpp"
#include "auth/dkim/signer.hpp"
#include "auth/dkim/verifier.hpp"
#include "auth/inbound/checker.hpp"
#include "dns/resolver.hpp"

namespace hikyaku::auth::test_support {

constexpr size_t kChunk = 4096;

// The header section of `message` through the empty line that ends it (the
// whole message when it has none), and the body after it.
inline std::string_view header_section(std::string_view message) {
  auto parsed = common::parse_message(message);
  return parsed.has_body_separator ? message.substr(0, message.size() - parsed.body.size()) : message;
}
inline std::string_view body_of(std::string_view message) { return common::parse_message(message).body; }

// What a receiver with the body in a file computes: the keys the header
// section asks for, the body fed in `chunk`-octet pieces.
inline common::BodyHashes precomputed(std::string_view message, size_t chunk = kChunk) {
  auto keys = inbound::body_hash_keys(common::parse_message(header_section(message)));
  return common::BodyHashes::of(body_of(message), keys, chunk);
}

inline void expect_same(const dkim::Result& whole, const dkim::Result& pre, size_t k) {
  EXPECT_EQ(dkim::status_name(pre.status), dkim::status_name(whole.status)) << "signature " << k << ": " << pre.detail;
  EXPECT_EQ(pre.detail, whole.detail) << "signature " << k;
  EXPECT_EQ(pre.domain, whole.domain) << "signature " << k;
  EXPECT_EQ(pre.selector, whole.selector) << "signature " << k;
  EXPECT_EQ(pre.algorithm, whole.algorithm) << "signature " << k;
  EXPECT_EQ(pre.identity, whole.identity) << "signature " << k;
  EXPECT_EQ(pre.b_prefix, whole.b_prefix) << "signature " << k;
  EXPECT_EQ(pre.key_bits, whole.key_bits) << "signature " << k;
  EXPECT_EQ(pre.testing, whole.testing) << "signature " << k;
  EXPECT_EQ(pre.unsigned_content, whole.unsigned_content) << "signature " << k;
}

// dkim::verify() over the whole message, checked against the precomputed path.
inline std::vector<dkim::Result> verify_both(std::string_view message, dns::Resolver& resolver,
                                             const dkim::VerifyOptions& options) {
  auto whole = dkim::verify(message, resolver, options);
  auto hashes = precomputed(message);
  auto parsed = common::parse_message(header_section(message));
  parsed.body_hashes = &hashes;
  auto pre = dkim::verify(parsed, resolver, options);
  EXPECT_EQ(pre.size(), whole.size()) << "precomputed body hashes";
  for (size_t k = 0; k < pre.size() && k < whole.size(); ++k) expect_same(whole[k], pre[k], k);
  return whole;
}

// arc::validate() over the whole message, checked against the precomputed path.
inline arc::ValidationResult validate_both(std::string_view message, dns::Resolver& resolver,
                                           const dkim::VerifyOptions& options) {
  auto whole = arc::validate(message, resolver, options);
  auto hashes = precomputed(message);
  auto parsed = common::parse_message(header_section(message));
  parsed.body_hashes = &hashes;
  auto pre = arc::validate(parsed, resolver, options);
  EXPECT_EQ(arc::chain_status_name(pre.status), arc::chain_status_name(whole.status)) << pre.reason;
  EXPECT_EQ(pre.reason, whole.reason);
  EXPECT_EQ(pre.instances, whole.instances);
  EXPECT_EQ(pre.oldest_pass, whole.oldest_pass);
  EXPECT_EQ(pre.domain, whole.domain);
  return whole;
}

// dkim::sign() over the whole message, checked against the precomputed path.
inline base::Result<std::string> sign_both(std::string_view message, const crypto::PrivateKey& key,
                                           const dkim::SignOptions& options,
                                           std::chrono::system_clock::time_point now) {
  auto whole = dkim::sign(message, key, options, now);
  auto hashes = precomputed(message);
  dkim::SignOptions with = options;
  with.body_hashes = &hashes;
  auto pre = dkim::sign(header_section(message), key, with, now);
  EXPECT_EQ(pre.ok(), whole.ok()) << "precomputed body hashes";
  if (pre.ok() && whole.ok()) {
    EXPECT_EQ(*pre, *whole);
  }
  if (!pre.ok() && !whole.ok()) {
    EXPECT_EQ(pre.error().message, whole.error().message);
  }
  return whole;
}

// arc::seal() over the whole message, checked against the precomputed path.
inline base::Result<arc::SealedSet> seal_both(std::string_view message, std::string_view results_text,
                                              std::string_view domain, std::string_view selector,
                                              const crypto::PrivateKey& key,
                                              std::chrono::system_clock::time_point now,
                                              const arc::SealOptions& options = {}) {
  auto whole = arc::seal(message, results_text, domain, selector, key, now, options);
  auto hashes = precomputed(message);
  arc::SealOptions with = options;
  with.body_hashes = &hashes;
  auto pre = arc::seal(header_section(message), results_text, domain, selector, key, now, with);
  EXPECT_EQ(pre.ok(), whole.ok()) << "precomputed body hashes";
  if (pre.ok() && whole.ok()) {
    EXPECT_EQ(pre->instance, whole->instance);
    EXPECT_EQ(arc::chain_status_name(pre->cv), arc::chain_status_name(whole->cv));
    EXPECT_EQ(pre->prefix(), whole->prefix());
  }
  if (!pre.ok() && !whole.ok()) {
    EXPECT_EQ(pre.error().message, whole.error().message);
  }
  return whole;
}

}  // namespace hikyaku::auth::test_support
