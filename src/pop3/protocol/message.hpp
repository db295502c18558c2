// Purpose:   Turn a stored message into what RETR and TOP send: lines ending
//            in CRLF (whatever the file holds: LF or CRLF), a leading '.'
//            doubled, and the terminating ".\r\n"; and the octet count that
//            STAT, LIST and "+OK n octets" announce for it.
// Standards: RFC 1939 §3 (multi-line responses: byte-stuffing of lines that
//            begin with the termination octet), §5 (octet counts are of the
//            message as sent, CRLF line endings, before byte-stuffing),
//            §7 (TOP: headers, the blank line, then n body lines),
//            RFC 5322 §2.1 (header/body separated by the first empty line).
// Trust:     message bytes are untrusted (any content, any size).
// Concurrency: pure functions.
// Errors:    none; every input renders.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace hikyaku::pop3::protocol {

// Octets of `content` in the canonical wire form: every line (split at LF,
// a CR just before the LF dropped) ends in CRLF, including a last line that
// had no line ending. This is the RFC 1939 size; stuffing is not counted.
uint64_t wire_size(std::string_view content);

// The byte-stuffed body of a RETR (top_lines empty) or TOP response,
// including the terminating ".\r\n" but not the "+OK" line.
std::string render_message(std::string_view content, std::optional<uint64_t> top_lines);

}  // namespace hikyaku::pop3::protocol
