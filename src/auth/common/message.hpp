// Purpose:   Split a raw message into header fields (raw text kept byte for
//            byte, folding included, with name and position) and body, the
//            input every DKIM/ARC canonicaliser and verifier works from.
//            A message whose body is elsewhere (a file) carries its
//            precomputed body hashes instead (body_hashes.hpp).
// Standards: RFC 5322 §2.2 (header fields, folding), §2.1 (header/body split
//            at the first empty line); RFC 6376 §5.4.2 (header instances are
//            picked from the bottom up).
// Trust:     untrusted message bytes; views point into the caller's buffer,
//            which must outlive the ParsedMessage.
// Errors:    none: malformed lines are kept as fields without a colon so that
//            verifiers can decide (they never match a signed header name).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::auth::common {

class BodyHashes;

struct HeaderField {
  std::string_view raw;    // "Name: value\r\n  folded" without the final CRLF
  std::string_view name;   // as written, before the colon (may have trailing WSP)
  std::string_view value;  // everything after the colon, folding kept
  size_t index = 0;        // position among the header fields, 0 = top
};

struct ParsedMessage {
  std::vector<HeaderField> headers;
  std::string_view body;  // after the empty line; empty if none
  bool has_body_separator = false;
  // When set, the body is not in `body` (which may be empty): every body
  // hash comes from here (common::body_hash()). Not owned; must outlive this.
  const BodyHashes* body_hashes = nullptr;

  // Header fields named `name` (case-insensitive), top to bottom.
  std::vector<const HeaderField*> all(std::string_view name) const;
};

// `message` must use CRLF line endings (see to_crlf()).
ParsedMessage parse_message(std::string_view message);

// Convert bare LF to CRLF (test files, dkimpy and the ValiMail suite use LF).
std::string to_crlf(std::string_view text);

// The header field name trimmed of trailing whitespace.
std::string_view field_name(const HeaderField& field);

}  // namespace hikyaku::auth::common
