// Purpose:   DKIM signing for outgoing mail: relaxed/relaxed, rsa-sha256 or
//            ed25519-sha256, a chosen header list with From over-signed, t=
//            from the caller's clock; returns the DKIM-Signature field to
//            prepend to the message.
// Standards: RFC 6376 §5 (signer actions; §5.4 header selection, §5.4.2
//            over-signing by listing a name once more than it occurs),
//            §3.5 (tags), RFC 8463 (ed25519-sha256), RFC 8301 (no rsa-sha1).
//            The body hash may be given precomputed (SignOptions::
//            body_hashes), for a message whose body is not in memory.
// Trust:     handles the private key (never logged); message is ours.
// Errors:    base::Result: no From field, a signing failure, or precomputed
//            body hashes without signing_body_hash_key().
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/common/body_hashes.hpp"
#include "auth/dkim/signature.hpp"
#include "base/result.hpp"
#include "crypto/key.hpp"

namespace hikyaku::auth::dkim {

// Header fields signed by default when present (RFC 6376 §5.4.1).
std::vector<std::string> default_signed_headers();

struct SignOptions {
  std::string domain;    // d=
  std::string selector;  // s=
  std::vector<std::string> headers = default_signed_headers();
  std::string identity;  // i= (empty: omitted, meaning "@domain")
  std::optional<std::chrono::seconds> expire_after;  // x= = t= + this
  // When set, `message` is the header section only (with the empty line
  // that ends it) and the body hash comes from here (not owned).
  const common::BodyHashes* body_hashes = nullptr;
};

// The algorithm our signatures (DKIM and ARC) use with a key of `type`:
// rsa-sha256 or ed25519-sha256, never rsa-sha1 (RFC 8301 §3.1).
Algorithm signing_algorithm(crypto::KeyType type);

// The body hash such a signature needs: relaxed, the whole body, and the
// hash of signing_algorithm(), sha256 for both key types (RFC 8463 §3).
common::BodyHashKey signing_body_hash_key(crypto::KeyType type);

// The "DKIM-Signature: …\r\n" field for `message` (CRLF line endings).
base::Result<std::string> sign(std::string_view message, const crypto::PrivateKey& key, const SignOptions& options,
                               std::chrono::system_clock::time_point now);

}  // namespace hikyaku::auth::dkim
