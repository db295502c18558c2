// Purpose:   HMAC-SHA1, HMAC-SHA256 and HMAC-MD5 (keyed message
//            authentication codes), for SRS address hashes, the SMTP
//            client's CRAM-MD5 and any other short keyed tag, plus a
//            constant-time comparison for checking them.
// Standards: RFC 2104 (HMAC), FIPS 180-4 (SHA-1, SHA-256); RFC 4231 and
//            RFC 2202 test vectors in hmac_test.cpp.
// Trust:     the key is a secret: it is never logged or copied beyond the
//            OpenSSL call. Data may be untrusted bytes of any length.
// Concurrency: stateless functions, safe from any thread.
// Errors:    none: an OpenSSL HMAC failure is a broken invariant (abort).
#pragma once

#include <string>
#include <string_view>

#include "crypto/hash.hpp"

namespace hikyaku::crypto {

// The raw MAC (20 bytes for SHA-1, 32 for SHA-256).
std::string hmac(HashAlgorithm algorithm, std::string_view key, std::string_view data);
inline std::string hmac_sha1(std::string_view key, std::string_view data) {
  return hmac(HashAlgorithm::sha1, key, data);
}
inline std::string hmac_sha256(std::string_view key, std::string_view data) {
  return hmac(HashAlgorithm::sha256, key, data);
}

// Compare two MACs without an early exit that leaks the mismatch position.
// HMAC-MD5, for the SMTP client's CRAM-MD5 (RFC 2195) only: MD5 is no
// longer a safe hash, but that mechanism is defined over it.
std::string hmac_md5(std::string_view key, std::string_view data);

bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace hikyaku::crypto
