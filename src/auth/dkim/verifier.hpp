// Purpose:   DKIM verification: every DKIM-Signature of a message checked on
//            its own, each with an RFC-vocabulary result, a detail string and
//            the header.d / header.s / header.a / header.i properties for
//            Authentication-Results and DMARC. Also verifies ARC-Message-
//            Signatures for auth::arc.
// Standards: RFC 6376 §6.1 (verifier steps: §6.1.1 signature checks incl.
//            d=/i= and From signed and x= expiry, §6.1.2 key lookup and record
//            checks, §6.1.3 body and header hashes), §3.4.5 and §8.2 (l=),
//            RFC 8301 §3.1–§3.2 (rsa-sha1 and RSA < 1024 bits refused),
//            RFC 8463 (ed25519-sha256), RFC 8601 §2.7.1 (result names),
//            RFC 8617 §4.1.2 (AMS is checked like a DKIM signature).
// Trust:     the message and DNS answers are untrusted; the number of
//            signatures checked is bounded by VerifyOptions.
// Concurrency: stateless functions; the Resolver is called synchronously.
//            Body hashes come from common::body_hash(): precomputed when
//            the ParsedMessage carries body_hashes, else from its body.
// Errors:    never fails: every outcome is a Result value; a precomputed
//            BodyHashes without the signature's key gives temperror "body
//            hash not available (…)".
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/common/message.hpp"
#include "auth/dkim/signature.hpp"
#include "dns/resolver.hpp"

namespace hikyaku::auth::dkim {

// RFC 8601 §2.7.1 (plus "policy" from RFC 8601 §2.7.1 for rsa-sha1 etc.).
enum class Status { pass, fail, neutral, temperror, permerror, policy, none };

std::string_view status_name(Status s);

struct Result {
  Status status = Status::none;
  std::string detail;        // why, for logs and AR comments
  std::string domain;        // header.d
  std::string selector;      // header.s
  std::string algorithm;     // header.a
  std::string identity;      // header.i (AUID)
  std::string b_prefix;      // header.b (first 8 base64 chars, RFC 6008)
  unsigned key_bits = 0;
  bool testing = false;           // key record t=y
  bool unsigned_content = false;  // l= left content after the signed part (RFC 6376 §8.2)
};

struct VerifyOptions {
  std::chrono::system_clock::time_point now = std::chrono::system_clock::now();
  unsigned min_rsa_bits = 1024;  // RFC 8301 §3.2
  bool allow_sha1 = false;       // RFC 8301 §3.1: rsa-sha1 is "policy" unless allowed
  size_t max_signatures = 10;    // bound the work an attacker can cause
};

// All DKIM-Signature fields of `message` (CRLF), top to bottom. A message
// without any yields one Result with Status::none.
std::vector<Result> verify(std::string_view message, dns::Resolver& resolver, const VerifyOptions& options = {});
// The same over a parsed message, whose body hashes may be precomputed
// (message.body_hashes; see common::body_hash()).
std::vector<Result> verify(const common::ParsedMessage& message, dns::Resolver& resolver,
                           const VerifyOptions& options);

// One signature field (DKIM-Signature or ARC-Message-Signature).
Result verify_field(const common::ParsedMessage& message, const common::HeaderField& field, SignatureKind kind,
                    dns::Resolver& resolver, const VerifyOptions& options);

}  // namespace hikyaku::auth::dkim
