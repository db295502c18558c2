// Purpose:   Sans-I/O formatting of IMAP response data: strings as quoted
//            strings or literals (whichever is valid for the bytes), NIL,
//            flag lists, INTERNALDATE date-times.
// Standards: RFC 3501 §4.3 (string), §4.5 (NIL), §9 (quoted-specials,
//            date-time), §2.3.2 (flags); RFC 3516 §4.2 (literal8).
// Trust:     values may come from untrusted messages; anything that is not
//            a safe quoted string becomes a literal, so no value can break
//            the response framing.
// Concurrency: pure functions.
// Errors:    none.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::imap::protocol {

// Maildir-backed system flags (RFC 3501 §2.3.2), one bit each.
enum Flag : uint8_t {
  kSeen = 1,
  kAnswered = 2,
  kFlagged = 4,
  kDeleted = 8,
  kDraft = 16,
};

// "\Seen" → kSeen...; 0 for anything else (keywords are not kept).
uint8_t flag_bit(std::string_view name);
// "(\Seen \Answered kw)"; `recent` adds \Recent.
std::string flag_list(uint8_t flags, bool recent = false, const std::vector<std::string>& keywords = {});
// Keywords: flags that are not "\..." system flags; case-insensitive.
bool is_keyword(std::string_view flag);
bool has_keyword(const std::vector<std::string>& keywords, std::string_view name);
// Add/remove keeping the list sorted case-insensitively; true when it changed.
bool add_keyword(std::vector<std::string>& keywords, std::string_view name);
bool remove_keyword(std::vector<std::string>& keywords, std::string_view name);
// Maildir info letters ("FRS") ↔ bits.
std::string maildir_letters(uint8_t flags);
uint8_t from_maildir_letters(std::string_view letters);

// A quoted string when the bytes allow it, else a literal "{n}\r\n...".
// A quoted string, or a literal when `s` cannot be one. `utf8`: valid UTF-8
// may be quoted (RFC 6855 §3 uQUOTED-CHAR, once UTF8=ACCEPT is enabled).
std::string quote(std::string_view s, bool utf8 = false);
// Always a literal (message data).
std::string literal(std::string_view s);
// RFC 3516 §4.2: a literal8 "~{n}\r\n..." when `s` holds a NUL (which a
// literal cannot carry, RFC 3501 §9 CHAR8), else a literal (BINARY[...]).
std::string binary_literal(std::string_view s);
std::string nstring(const std::optional<std::string>& s);
// RFC 3501 date-time "dd-Mon-yyyy hh:mm:ss +0000", quoted, for Unix seconds (UTC).
std::string internal_date(int64_t unix_seconds);

}  // namespace hikyaku::imap::protocol
