// Purpose:   Messages hikyaku generates about other messages: the RFC 3464
//            delivery status notification (multipart/report) sent to the
//            envelope sender when a non-hidden forward finally fails, and
//            the small RFC 5322 tools that it, the owner's notice and the
//            X-Hikyaku-Diverted header need (date, one safe header line,
//            reading fields of the original header section).
// Standards: RFC 3464 (DSN format), RFC 3462/6522 (multipart/report),
//            RFC 5322 §3.3 (date-time), §3.2.4 (quoted-string), §2.2.3
//            (unfolding), §2.1.1 (line length), RFC 3834 §5
//            (Auto-Submitted), RFC 3461 §6.2 (no DSN to the null sender —
//            decided by the caller, policy::ForwardFallback).
// Trust:     the original header section and remote reply texts are
//            untrusted: every value copied from them is reduced to one line
//            of printable US-ASCII (CR, LF, NUL and other controls can never
//            start a new header or body line in what we generate). Callers
//            pass the list of hidden addresses; they are replaced by
//            "<hidden>" in every byte of a DSN.
// Concurrency: pure functions.
// Errors:    none; every input yields a well-formed message.
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
// replaced by "<hidden>".
std::string redact(std::string text, const std::vector<std::string>& hidden);

// The header section of a message (up to, not including, the first empty
// line; the whole text when there is none).
std::string_view header_section(std::string_view message);
// The unfolded value of the first field named `name` (case-insensitive),
// leading white space removed; nullopt when absent.
std::optional<std::string> header_value(std::string_view headers, std::string_view name);
// Every unfolded value of fields named `name`.
std::vector<std::string> header_values(std::string_view headers, std::string_view name);

// What a DSN reports about one failed recipient (RFC 3464 §2.3).
struct DsnRecipient {
  std::string final_recipient;  // RFC 3464 §2.3.2: the original recipient, never a hidden forward
  std::string status;           // RFC 3464 §2.3.4: "5.7.1"
  std::string diagnostic;       // the remote reply ("550 5.7.1 ...") or our description
  std::chrono::system_clock::time_point last_attempt{};
  bool expired = false;         // gave up after [delivery] expire (temporary failures)
};

struct DsnInput {
  std::string reporting_mta;  // our hostname
  std::string to;             // the envelope sender of the original message
  std::string queue_id;       // the original's queue id (X-Hikyaku-Queue-ID)
  std::chrono::system_clock::time_point arrival{};
  std::chrono::system_clock::time_point now{};
  std::vector<DsnRecipient> recipients;  // at least one
  std::string original_headers;          // header_section() of the original message
  std::vector<std::string> hidden;       // addresses that must not appear
  std::string boundary_seed;             // makes the MIME boundary unique (queue id + time)
};

// The complete DSN (CRLF line endings, US-ASCII, ready to enqueue with the
// null reverse-path): multipart/report; report-type=delivery-status with a
// human-readable part, the message/delivery-status part and the original
// header section as text/rfc822-headers (RFC 3464 §2, RFC 3462 §2).
std::string build_dsn(const DsnInput& input);

}  // namespace hikyaku::mail
