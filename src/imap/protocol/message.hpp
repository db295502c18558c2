// Purpose:   Sans-I/O reading of one message (RFC 5322 + MIME) for FETCH,
//            SEARCH and SORT: header/body split, header field selection, the
//            MIME part tree (mail/mime.hpp's walker), section extraction (BODY[1.2.MIME],
//            [HEADER.FIELDS (..)], [TEXT]), ENVELOPE and BODY/BODYSTRUCTURE,
//            the values SORT compares (base subject, first address, sent
//            date), BINARY[part] (decoded) and the base64 re-encoding of
//            binary parts at APPEND.
// Standards: RFC 3501 §6.4.5 (section numbering), §7.4.2 (ENVELOPE, BODY,
//            BODYSTRUCTURE); RFC 5322 §2.2 (header fields, folding),
//            §3.4 (addresses, groups); RFC 2045/2046 (Content-Type,
//            multipart boundaries, defaults: text/plain us-ascii; in
//            multipart/digest message/rfc822); RFC 2047 §6 (encoded-words,
//            decoded to UTF-8); RFC 5256 §2.1 (base subject), §2.2 (sent
//            date), §3 (FROM/TO/CC: addr-mailbox); RFC 5957 §3 (display);
//            RFC 3516 §4.2 (BINARY[part]: the part decoded, see
//            mail/transfer_encoding.hpp), §4.3 (binary parts of an APPEND
//            stored as base64).
// Trust:     message bytes are untrusted: parsing is bounded (nesting depth,
//            part count) and never reads outside the input; malformed MIME
//            degrades to a single text part, never fails.
// Concurrency: pure functions over the message text (CRLF line endings, as
//            served on the wire).
// Errors:    nullopt for a section that does not exist; for BINARY a
//            status (missing part, unknown encoding); no exceptions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "imap/protocol/command.hpp"
#include "mail/mime.hpp"

namespace hikyaku::imap::protocol {

// The header (with its empty line) and the body of a message.
using HeaderBody = mail::mime::HeaderBody;
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

// RFC 3516 §4.2 BINARY[part]: the part's content with its
// Content-Transfer-Encoding (base64, quoted-printable) undone, before any
// <partial>. An empty `part` is the whole message; a multipart or
// message/rfc822 part is served unchanged (RFC 2045 §6.4: never encoded).
struct BinarySection {
  enum class Status {
    ok,
    missing,      // no such part
    unknown_cte,  // an encoding hikyaku cannot undo: NO [UNKNOWN-CTE]
  };
  Status status = Status::ok;
  std::string octets;
};
BinarySection binary_section(std::string_view message, const std::vector<uint32_t>& part);

// RFC 3516 §4.3 (binary APPEND): the message with every leaf part that
// holds binary octets ("Content-Transfer-Encoding: binary", or a NUL under
// 7bit/8bit/none) re-encoded as base64, its CTE field replaced, so BODY[]
// never serves raw binary and BINARY[] gives the octets back. Other parts
// and all other bytes are unchanged.
std::string encode_binary_parts(std::string_view message);

// RFC 3501 §7.4.2 ENVELOPE / BODY (`extended` false) / BODYSTRUCTURE.
std::string envelope(std::string_view message);
std::string body_structure(std::string_view message, bool extended);

// The date of an RFC 5322 Date: value as days since the epoch (SENTON...).
std::optional<Days> parse_rfc5322_date(std::string_view value);

// The addresses of an address header in a canonical form
// ("Name <local@domain>, ..."), comments and folding removed, so that SEARCH
// FROM user@domain finds "<user (c)@ (c) domain>" too.
std::string address_search_text(std::string_view value);

// The date and time of an RFC 5322 §3.3 Date: value in Unix seconds (UTC);
// nullopt when it cannot be parsed. A zone hikyaku does not know is UTC.
std::optional<int64_t> parse_rfc5322_date_time(std::string_view value);

// RFC 2047 §6.1: the encoded-words of an unstructured value or a phrase
// decoded to UTF-8 (B and Q; UTF-8, US-ASCII and ISO-8859-1 — other
// charsets keep their octets when they are UTF-8, else are read as
// ISO-8859-1); whitespace between two encoded-words dropped (§6.2). An
// encoded-word that does not decode stays as it was.
std::string decode_encoded_words(std::string_view value);

// RFC 5256 §2.1: the base subject of a Subject: value (encoded-words
// decoded, "Re:", "Fwd:", "[blob]" leaders and "(fwd)" trailers removed,
// whitespace collapsed), and whether the message is a reply or forward
// (THREAD=REFERENCES step 5): something of that kind was removed — a
// subj-refwd, a "(fwd)" trailer or a "[fwd: ...]" wrapper.
struct BaseSubject {
  std::string text;
  bool reply_or_forward = false;
};
BaseSubject base_subject(std::string_view subject);

// RFC 5256 §3 FROM/TO/CC: the addr-mailbox (local part) of the first
// address of an address header; for a group, its name (what ENVELOPE lists
// first); "" when there is none.
std::string first_mailbox(std::string_view value);

// RFC 5957 §3 DISPLAYFROM/DISPLAYTO: the display-name of the first address
// (encoded-words decoded), else its addr-spec (mailbox "@" domain, or the
// mailbox alone without a domain; a group's name); "" when there is none.
std::string first_display_name(std::string_view value);

// ASCII case-insensitive substring search (SEARCH, RFC 3501 §6.4.4).
bool icontains(std::string_view haystack, std::string_view needle);

}  // namespace hikyaku::imap::protocol
