// Purpose:   Sans-I/O MIME Content-Transfer-Encoding codecs, the one copy
//            in the tree: decoding base64 and quoted-printable part bodies
//            (IMAP FETCH BINARY[...], BINARY.SIZE[...]; the attachments
//            [scan] clamd_scope = "attachments" sends to clamd, see
//            mail/mime.hpp) and encoding binary octets as base64 (IMAP
//            APPEND of a literal8 message whose parts say
//            "Content-Transfer-Encoding: binary", stored as base64 so that
//            BODY[...] never serves raw binary).
// Standards: RFC 2045 §6.7 (quoted-printable: soft line breaks, "=XX",
//            trailing whitespace of an encoded line dropped), §6.8 (base64:
//            76-character lines, characters outside the alphabet ignored,
//            "=" padding ends the data); RFC 3516 §4.2 (decoding for
//            BINARY), §4.3 (binary APPEND).
// Trust:     input is untrusted message bytes: every function reads only
//            within its input, allocates at most a bounded multiple of it,
//            and never fails — malformed input degrades (a base64 character
//            outside the alphabet is skipped, an incomplete final quantum
//            gives the octets it holds, a QP "=" not followed by two hex
//            digits is kept as it is, as RFC 2045 §6.7 note (2) suggests).
// Concurrency: pure functions.
// Errors:    none (see Trust).
#pragma once

#include <string>
#include <string_view>

namespace hikyaku::mail {

// RFC 2045 §6.8 base64 body → octets.
std::string decode_base64_body(std::string_view text);

// RFC 2045 §6.7 quoted-printable body → octets; hard line breaks (CRLF or
// a bare LF) come out as CRLF.
std::string decode_quoted_printable_body(std::string_view text);

// Octets → RFC 2045 §6.8 base64 in lines of at most 76 characters, each
// ending in CRLF ("" for no octets).
std::string encode_base64_body(std::string_view octets);

}  // namespace hikyaku::mail
