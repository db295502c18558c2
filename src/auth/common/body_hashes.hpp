// Purpose:   Body hashes computed once, before and outside the DKIM/ARC
//            verifiers and signers: the caller lists the hashes a message
//            needs (BodyHashKey: body canonicalisation, hash, l=), feeds the
//            body in chunks of any size (e.g. from a file) and hands the
//            result to them through ParsedMessage::body_hashes. body_hash()
//            is the one place where the auth code gets a body hash: from
//            there when set, else computed from ParsedMessage::body.
// Standards: RFC 6376 §3.7 (the body hash, bh=), §3.4.3–§3.4.4 (body
//            canonicalisation), §3.4.5 (l= counts canonical octets), RFC
//            8617 §4.1.2 (the AMS body hash is the same computation).
// Trust:     untrusted body bytes; the work is one BodyHasher per distinct
//            key, O(1) state each. No I/O: the caller reads the body.
// Concurrency: a BodyHashes is a plain value owned by one thread; once
//            finished it is only read.
// Errors:    body_hash() returns an Error when the message carries
//            precomputed hashes without the key asked for (a caller bug,
//            never hidden by hashing an empty body); update() after finish()
//            is a broken invariant (HIKYAKU_CHECK).
#pragma once

#include <compare>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "auth/common/canonicalization.hpp"
#include "auth/common/message.hpp"
#include "base/result.hpp"
#include "crypto/hash.hpp"

namespace hikyaku::auth::common {

// What a body hash depends on: c= (its body part), the hash of a=, and l=.
struct BodyHashKey {
  Canonicalization canonicalization = Canonicalization::simple;
  crypto::HashAlgorithm algorithm = crypto::HashAlgorithm::sha256;
  std::optional<uint64_t> limit;  // l= (body length count); nullopt: the whole body

  auto operator<=>(const BodyHashKey&) const = default;
};

// "relaxed/sha256" or "simple/sha1/l=13", for logs and error details.
std::string body_hash_key_name(const BodyHashKey& key);

struct BodyHash {
  std::string digest;             // raw (not base64)
  uint64_t canonical_length = 0;  // as BodyHasher::canonical_length(): may exceed l=
};

class BodyHashes {
 public:
  // Ask for a hash; the same key twice is one hash. Only before the first
  // update(): a key asked for later is not computed (find() gives nullptr).
  void want(const BodyHashKey& key);
  // The next piece of the body (bytes after the empty line ending the
  // header section, CRLF line endings), any size, CR and LF may be split.
  void update(std::string_view chunk);
  // The body is complete; the hashes become available. Idempotent.
  void finish();
  // The hash for `key`; nullptr if it was not wanted or finish() not called.
  const BodyHash* find(const BodyHashKey& key) const;
  bool finished() const { return finished_; }

  // Test and convenience helper: `keys` over a whole in-memory body, fed in
  // pieces of `chunk_size` octets (0: in one piece).
  static BodyHashes of(std::string_view body, std::span<const BodyHashKey> keys, size_t chunk_size = 0);

 private:
  struct Entry {
    BodyHasher hasher;
    BodyHash result;
  };
  std::map<BodyHashKey, Entry> entries_;
  bool started_ = false;
  bool finished_ = false;
};

// The body hash of `message` for `key`: from message.body_hashes when set
// (an Error if it lacks the key), else computed from message.body.
base::Result<BodyHash> body_hash(const ParsedMessage& message, const BodyHashKey& key);

}  // namespace hikyaku::auth::common
