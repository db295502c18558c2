// Purpose:   Messages hikyaku generates about other messages: the RFC 3464
//            delivery status notification (multipart/report) sent to the
//            envelope sender when a non-hidden forward finally fails
//            (the RFC 5322 tools it uses are in header.hpp).
// Standards: RFC 3464 (DSN format), RFC 3462/6522 (multipart/report),
//            RFC 5322 §3.3 (date-time), §3.2.4 (quoted-string), §2.2.3
//            (unfolding), §2.1.1 (line length), RFC 3834 §5
//            (Auto-Submitted), RFC 3461 §6.2 (no DSN to the null sender —
//            decided by the caller, policy::DeliveryPolicy).
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

#include "mail/header.hpp"

namespace hikyaku::mail {

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
