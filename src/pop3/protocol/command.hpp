// Purpose:   Parse one POP3 command line (without its CRLF) into a verb and
//            arguments, and the numeric arguments POP3 uses (message numbers,
//            TOP line counts). Sans-I/O: no Asio, no state.
// Standards: RFC 1939 §3 (keywords are 3–4 printable ASCII characters,
//            case-insensitive, arguments separated by a single space),
//            RFC 2449 §4 (CAPA; lines up to 255 octets — we accept longer
//            lines up to the session's limit for AUTH responses),
//            RFC 2595 §4 (STLS), RFC 5034 §4 (AUTH).
// Trust:     input is untrusted network data; every byte value is handled.
// Concurrency: pure functions.
// Errors:    unknown or malformed keywords give Verb::unknown; no exceptions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::pop3::protocol {

enum class Verb {
  unknown,
  user, pass, apop, auth, stls, capa, quit,   // AUTHORIZATION (CAPA, QUIT: any)
  stat, list, retr, dele, noop, rset, top, uidl,  // TRANSACTION
};

struct Command {
  Verb verb = Verb::unknown;
  std::string keyword;            // upper-cased, as sent (for logs)
  std::vector<std::string> args;  // split on runs of spaces
  std::string rest;               // everything after the keyword and one space
};

Command parse_command(std::string_view line);

// RFC 1939 §3: a message number is a positive decimal without sign; nullopt
// for 0, signs, non-digits or values that do not fit.
std::optional<uint64_t> parse_message_number(std::string_view text);

// RFC 1939 §7 TOP: a non-negative line count. Very large counts saturate to
// UINT64_MAX instead of failing: fetchmail sends `TOP n 99999999` and some
// clients send longer runs of 9s to mean "everything".
std::optional<uint64_t> parse_line_count(std::string_view text);

}  // namespace hikyaku::pop3::protocol
