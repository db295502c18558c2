// Purpose:   The From rewrite of a DMARC-aware forward, as a pure function
//            over the message text: From becomes "<name> via <domain>"
//            <noreply@<domain>>; the original From value goes to
//            X-Original-From and, when the message has no Reply-To, to
//            Reply-To. delivery::ForwardTransform decides when to call it
//            and signs the result; this file only rewrites (sans-I/O, so the
//            rewrite is fuzzed on its own: fuzz/forward_transform_fuzz.cpp).
// Standards: RFC 5322 §3.6.2 (From, Reply-To), §3.2.4 (quoted-string),
//            RFC 2047 §5(3) (encoded-words never inside quotes), RFC 6532
//            §3.2 (UTF-8 in quoted strings), RFC 7960 §4.1.3.1 (rewriting
//            the From of mail that cannot pass DMARC after forwarding).
// Trust:     the message and the author (parsed from it) are untrusted: the
//            new From never carries a CR, LF or other control character, and
//            every other header field and the body are copied byte for byte.
// Concurrency: pure function.
// Errors:    none; a message without a From field gets the new fields added
//            nowhere (callers pass an author found in the message).
#pragma once

#include <string>
#include <string_view>

#include "auth/common/author.hpp"

namespace hikyaku::auth::dmarc {

// `message` (CRLF) with its From field(s) replaced by the new From,
// Reply-To (only when there is none) and X-Original-From, placed where the
// first From was. `domain` is the forwarding domain (ours, trusted).
std::string rewrite_from(std::string_view message, const common::Author& author, std::string_view domain);

}  // namespace hikyaku::auth::dmarc
