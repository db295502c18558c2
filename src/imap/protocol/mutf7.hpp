// Purpose:   IMAP mailbox names on the wire are in modified UTF-7; we keep
//            them in UTF-8. mutf7_to_utf8() decodes a client's name,
//            utf8_to_mutf7() encodes one of ours for a response (LIST,
//            STATUS, ...). Pure functions, sans-I/O.
// Standards: RFC 3501 §5.1.3 (modified UTF-7: printable ASCII but "&"
//            stands for itself, "&" is "&-", the rest is "&" + modified
//            BASE64 of UTF-16BE + "-"); RFC 2152 (UTF-7), RFC 2781
//            (UTF-16), RFC 3629 (UTF-8).
// Trust:     the wire name is untrusted. Only the canonical form is
//            accepted (the one utf8_to_mutf7 writes), so a name has one
//            spelling on the wire and decode-then-encode gives it back
//            byte for byte. The UTF-8 may hold control characters
//            (U+0000-U+001F, U+007F are legal, encoded): callers that keep
//            names on disk check those themselves. Time and memory are
//            linear in the input.
// Concurrency: none (no state).
// Errors:    an invalid input is std::nullopt (or false); nothing throws
//            but std::bad_alloc.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace hikyaku::imap::protocol {

// The UTF-8 of a modified UTF-7 mailbox name, or nullopt when `name` is not
// canonical modified UTF-7: a byte outside 0x20-0x7e; an "&" without its
// "-"; a BASE64 character outside [A-Za-z0-9+,]; non-zero padding bits or a
// character that adds no whole octet; an odd number of UTF-16 octets; an
// unpaired surrogate; printable ASCII (0x20-0x7e, "&" included) inside an
// "&...-" run, since it must be written directly; two runs back to back
// ("&...-&...-" must be one run). "&-" is the literal "&".
std::optional<std::string> mutf7_to_utf8(std::string_view name);

// The modified UTF-7 of a UTF-8 mailbox name, or nullopt when `name` is not
// valid UTF-8 (base::valid_utf8). Printable ASCII stays as it is but "&" becomes
// "&-"; each run of other characters becomes one "&" + BASE64 + "-".
std::optional<std::string> utf8_to_mutf7(std::string_view name);

// mutf7_to_utf8(name).has_value().
bool valid_mutf7(std::string_view name);

}  // namespace hikyaku::imap::protocol
