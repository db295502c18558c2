// Purpose:   ARC chain validation of an incoming message: the result
//            (none/pass/fail) with the reason and the oldest-pass instance,
//            for the arc= entry of our Authentication-Results and for sealing.
// Standards: RFC 8617 §5.2 (validator actions: structure, newest cv, AMS of
//            the newest set, oldest-pass, every ARC-Seal), §4.1.3 (seal hash
//            input, relaxed header canonicalisation), RFC 8301 (no rsa-sha1,
//            RSA ≥ 1024 bits), RFC 6376 §6.1.2 (key records).
// Trust:     message and DNS answers are untrusted; at most 50 instances.
// Concurrency: stateless; the Resolver is called synchronously.
// Errors:    never fails: DNS trouble makes the chain fail with a reason,
//            and so does a message whose precomputed body hashes
//            (ParsedMessage::body_hashes) lack an AMS's key ("body hash not
//            available").
#pragma once

#include <string>
#include <string_view>

#include "auth/arc/chain.hpp"
#include "auth/dkim/verifier.hpp"
#include "dns/resolver.hpp"

namespace hikyaku::auth::arc {

struct ValidationResult {
  ChainStatus status = ChainStatus::none;
  std::string reason;   // why fail (or "no ARC sets")
  int instances = 0;    // N, the newest instance
  int oldest_pass = 0;  // RFC 8617 §5.2 step 5; 0 when not determined
  std::string domain;   // d= of the newest ARC-Seal (for AR arc properties)
};

ValidationResult validate(std::string_view message, dns::Resolver& resolver,
                          const dkim::VerifyOptions& options = {});
ValidationResult validate(const common::ParsedMessage& message, dns::Resolver& resolver,
                          const dkim::VerifyOptions& options);

}  // namespace hikyaku::auth::arc
