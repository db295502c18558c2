// Purpose:   Message digests for DKIM and ARC: an incremental Hasher (SHA-256,
//            SHA-1) so bodies can be hashed chunk by chunk without copying.
// Standards: FIPS 180-4 (SHA-1, SHA-256); RFC 6376 §3.3 (the two DKIM hashes),
//            RFC 8301 §3.1 (SHA-1 kept for verification only).
// Trust:     hashes arbitrary untrusted bytes; no secrets.
// Concurrency: a Hasher is a plain value owned by one thread.
// Errors:    none: OpenSSL digest failures are broken invariants (abort).
#pragma once

#include <memory>
#include <string>
#include <string_view>

namespace hikyaku::crypto {

enum class HashAlgorithm { sha1, sha256 };

// "sha1" / "sha256" as written in a= and h= tags.
std::string_view hash_name(HashAlgorithm algorithm);

class Hasher {
 public:
  explicit Hasher(HashAlgorithm algorithm);
  ~Hasher();
  Hasher(Hasher&&) noexcept;
  Hasher& operator=(Hasher&&) noexcept;
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;

  void update(std::string_view data);
  // The raw digest (20 or 32 bytes). The hasher is reset afterwards.
  std::string finish();
  HashAlgorithm algorithm() const { return algorithm_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  HashAlgorithm algorithm_;
};

std::string digest(HashAlgorithm algorithm, std::string_view data);
inline std::string sha256(std::string_view data) { return digest(HashAlgorithm::sha256, data); }
inline std::string sha1(std::string_view data) { return digest(HashAlgorithm::sha1, data); }

}  // namespace hikyaku::crypto
