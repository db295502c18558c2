// Purpose:   DKIM/ARC canonicalisation: "simple" and "relaxed" for header
//            fields and bodies, with an incremental body hasher that honours
//            the l= body length limit and reports how much was left unsigned.
// Standards: RFC 6376 §3.4.1–§3.4.4 (simple/relaxed header and body), §3.4.5
//            (l= counts canonicalised octets), §3.7 (the signature field is
//            hashed with an empty b= value and without its final CRLF),
//            errata 3192 / dkimpy behaviour: relaxed empty body hashes as "".
// Trust:     untrusted message bytes; state is O(1) per chunk apart from the
//            caller-visible output.
// Errors:    none; every byte string has a canonical form.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "crypto/hash.hpp"

namespace hikyaku::auth::common {

enum class Canonicalization { simple, relaxed };

std::string_view canonicalization_name(Canonicalization c);

// "relaxed/simple" etc. (RFC 6376 §3.5 c=; body defaults to simple).
struct CanonicalizationPair {
  Canonicalization header = Canonicalization::simple;
  Canonicalization body = Canonicalization::simple;
};
std::optional<CanonicalizationPair> parse_canonicalization(std::string_view c_value);

// A whole header field (as HeaderField::raw) in canonical form, with CRLF.
std::string canonicalize_header(Canonicalization c, std::string_view raw_field);

// The raw field with the value of its "b=" tag deleted (RFC 6376 §3.7).
std::string remove_b_value(std::string_view raw_field);

// Streaming body canonicaliser: feed chunks, get canonical output appended.
class BodyCanonicalizer {
 public:
  explicit BodyCanonicalizer(Canonicalization c) : c_(c) {}
  void update(std::string_view chunk, std::string& out);
  void finish(std::string& out);

 private:
  void content(char ch, std::string& out);
  void end_line(std::string& out);

  Canonicalization c_;
  uint64_t empty_lines_ = 0;  // RFC 6376 §3.4.3/§3.4.4: held back until content follows
  uint64_t line_len_ = 0;
  bool pending_cr_ = false;
  bool pending_wsp_ = false;
  bool emitted_ = false;
};

std::string canonicalize_body(Canonicalization c, std::string_view body);

// Hash of the canonical body, at most `limit` octets of it (l=).
class BodyHasher {
 public:
  BodyHasher(Canonicalization c, crypto::HashAlgorithm algorithm, std::optional<uint64_t> limit = std::nullopt);
  void update(std::string_view chunk);
  std::string finish();  // raw digest
  // Octets of canonical body seen (finish() first); > limit means content was
  // appended after the signed part (RFC 6376 §8.2).
  uint64_t canonical_length() const { return total_; }

 private:
  void consume(std::string_view canon);

  BodyCanonicalizer canon_;
  crypto::Hasher hasher_;
  std::optional<uint64_t> limit_;
  uint64_t total_ = 0;
  std::string buf_;
};

}  // namespace hikyaku::auth::common
