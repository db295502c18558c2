// Purpose:   ARC sealing for the forwarder: given the message as it will be
//            sent and our Authentication-Results payload, produce the three
//            fields of the next ARC set (ARC-Seal, ARC-Message-Signature,
//            ARC-Authentication-Results) to prepend, newest first.
// Standards: RFC 8617 §5.1 (sealer actions), §5.1.1 (AAR = "i=N; " + AR
//            payload), §5.1.2 (AMS: relaxed/relaxed, never signs ARC-Seal),
//            §4.1.3 and §5.1.3 (AS over all sets in instance order with
//            relaxed canonicalisation; with cv=fail only over its own set),
//            §4.2.1 (cv=none only for i=1), RFC 8463 / RFC 6376 (algorithms).
// Trust:     holds the private key (never logged); the message may contain
//            untrusted earlier ARC sets, which are signed over, not trusted.
//            The AMS body hash may be given precomputed (SealOptions::
//            body_hashes), for a message whose body is not in memory.
// Errors:    base::Result: too many instances, a broken chain we should not
//            extend (i>1 with cv=none), signing failures, precomputed body
//            hashes without dkim::signing_body_hash_key().
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/arc/chain.hpp"
#include "auth/common/body_hashes.hpp"
#include "base/result.hpp"
#include "crypto/key.hpp"

namespace hikyaku::auth::arc {

struct SealedSet {
  int instance = 0;
  ChainStatus cv = ChainStatus::none;
  std::string seal;     // "ARC-Seal: …\r\n"
  std::string message_signature;  // "ARC-Message-Signature: …\r\n"
  std::string results;  // "ARC-Authentication-Results: …\r\n"
  // The three fields in the order to prepend (ARC-Seal on top).
  std::string prefix() const { return seal + message_signature + results; }
};

// Header fields the AMS signs when present (RFC 8617 §4.1.2; From always).
std::vector<std::string> default_ams_headers();

struct SealOptions {
  std::vector<std::string> headers = default_ams_headers();
  // The chain status to record; nullopt: taken from the "arc=" result in
  // `results_text` (no arc= result means none), as OpenARC and dkimpy do.
  std::optional<ChainStatus> cv;
  // When set, `message` is the header section only (with the empty line
  // that ends it) and the AMS body hash comes from here (not owned).
  const common::BodyHashes* body_hashes = nullptr;
};

// `results_text` is the Authentication-Results payload: "authserv-id;
// spf=pass smtp.mailfrom=…; dkim=…; dmarc=…; arc=pass" (our own checks).
base::Result<SealedSet> seal(std::string_view message, std::string_view results_text, std::string_view domain,
                             std::string_view selector, const crypto::PrivateKey& key,
                             std::chrono::system_clock::time_point now, const SealOptions& options = {});

}  // namespace hikyaku::auth::arc
