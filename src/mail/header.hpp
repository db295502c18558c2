// Purpose:   Small RFC 5322 tools used wherever hikyaku reads or writes a
//            header field: the date-time format, one safe header line,
//            quoted strings, hidden-address redaction, reading fields of a
//            header section, and the one line splitter (LF or CRLF).
// Standards: RFC 5322 §3.3 (date-time), §3.2.4 (quoted-string), §2.2.3
//            (unfolding), §2.1 (header section ends at the first empty line).
// Trust:     inputs are untrusted message text: one_line() reduces any value
//            to printable US-ASCII on one line, so nothing copied from a
//            message or a remote reply can start a new header or body line.
// Concurrency: pure functions.
// Errors:    none.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::mail {

// RFC 5322 §3.3 date-time in UTC: "Tue, 03 Mar 2026 10:11:12 +0000".
std::string rfc5322_date(std::chrono::system_clock::time_point t);

// One line of printable US-ASCII: CR/LF/TAB and runs of white space become
// one space, other control bytes and non-ASCII bytes become '?', the result
// is trimmed and cut to `max` bytes (with "...").
std::string one_line(std::string_view text, size_t max = 400);

// RFC 5322 §3.2.4 quoted-string content: one_line(), then '\' and '"'
// escaped with a backslash. Returns the text with the surrounding quotes.
std::string quoted_string(std::string_view text, size_t max = 400);

// Every occurrence (ASCII case-insensitive) of each address in `hidden` is
// replaced by "<hidden>", with the rest of the address it is part of:
// "open@x.org" and "pen@x.org.net" for a hidden "pen@x.org" (a part left in
// clear would tell which address is hidden); dots at either edge stay.
std::string redact(std::string text, const std::vector<std::string>& hidden);

// The line of `text` starting at `pos`, without its LF or CRLF; `pos` moves
// past the line end (to text.size() at the end). The one line splitter.
std::string_view next_line(std::string_view text, size_t& pos);

// The header section of a message (up to, not including, the first empty
// line; the whole text when there is none).
std::string_view header_section(std::string_view message);
// The unfolded value of the first field named `name` (case-insensitive),
// leading white space removed; nullopt when absent.
std::optional<std::string> header_value(std::string_view headers, std::string_view name);
// Every unfolded value of fields named `name`.
std::vector<std::string> header_values(std::string_view headers, std::string_view name);
// Where the first header field (with its continuation lines) ends: the
// offset just past its line end.
size_t first_field_end(std::string_view message);

}  // namespace hikyaku::mail
