// Purpose:   Sans-I/O reading of one message (RFC 5322 + MIME) for FETCH and
//            SEARCH: header/body split, header field selection, the MIME
//            part tree, section extraction (BODY[1.2.MIME], [HEADER.FIELDS
//            (..)], [TEXT]), ENVELOPE and BODY/BODYSTRUCTURE.
// Standards: RFC 3501 §6.4.5 (section numbering), §7.4.2 (ENVELOPE, BODY,
//            BODYSTRUCTURE); RFC 5322 §2.2 (header fields, folding),
//            §3.4 (addresses, groups); RFC 2045/2046 (Content-Type,
//            multipart boundaries, defaults: text/plain us-ascii; in
//            multipart/digest message/rfc822).
// Trust:     message bytes are untrusted: parsing is bounded (nesting depth,
//            part count) and never reads outside the input; malformed MIME
//            degrades to a single text part, never fails.
// Concurrency: pure functions over the message text (CRLF line endings, as
//            served on the wire).
// Errors:    nullopt for a section that does not exist.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imap/protocol/command.hpp"

namespace hikyaku::imap::protocol {

struct HeaderBody {
  std::string_view header;  // including the empty line that ends it
  std::string_view body;
};
HeaderBody split_message(std::string_view message);

// The header fields named (or, with `exclude`, not named) in `names`
// (upper-cased), followed by the empty line (RFC 3501 §6.4.5).
std::string header_fields(std::string_view header, const std::vector<std::string>& names, bool exclude);
// The unfolded value of the first field `name` (case-insensitive).
std::optional<std::string> header_value(std::string_view header, std::string_view name);
// All values of field `name`, unfolded, joined with ", ".
std::optional<std::string> header_values(std::string_view header, std::string_view name);

// The bytes of a section, before any <partial>; nullopt when it does not exist.
std::optional<std::string> section_text(std::string_view message, const Section& section);

// RFC 3501 §7.4.2 ENVELOPE / BODY (`extended` false) / BODYSTRUCTURE.
std::string envelope(std::string_view message);
std::string body_structure(std::string_view message, bool extended);

// The date of an RFC 5322 Date: value as days since the epoch (SENTON...).
std::optional<Days> parse_rfc5322_date(std::string_view value);

// The addresses of an address header in a canonical form
// ("Name <local@domain>, ..."), comments and folding removed, so that SEARCH
// FROM user@domain finds "<user (c)@ (c) domain>" too.
std::string address_search_text(std::string_view value);

// ASCII case-insensitive substring search (SEARCH, RFC 3501 §6.4.4).
bool icontains(std::string_view haystack, std::string_view needle);

}  // namespace hikyaku::imap::protocol
