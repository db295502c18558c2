// Purpose:   DKIM signing for outgoing mail: relaxed/relaxed, rsa-sha256 or
//            ed25519-sha256, a chosen header list with From over-signed, t=
//            from the caller's clock; returns the DKIM-Signature field to
//            prepend to the message.
// Standards: RFC 6376 §5 (signer actions; §5.4 header selection, §5.4.2
//            over-signing by listing a name once more than it occurs),
//            §3.5 (tags), RFC 8463 (ed25519-sha256), RFC 8301 (no rsa-sha1).
// Trust:     handles the private key (never logged); message is ours.
// Errors:    base::Result: no From field, or a signing failure.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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
};

// The "DKIM-Signature: …\r\n" field for `message` (CRLF line endings).
base::Result<std::string> sign(std::string_view message, const crypto::PrivateKey& key, const SignOptions& options,
                               std::chrono::system_clock::time_point now);

}  // namespace hikyaku::auth::dkim
