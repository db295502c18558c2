// Purpose:   ClamAV clamd's INSTREAM protocol, sans-I/O: the bytes to send
//            (the command, each chunk's 4-byte length, the zero-length end)
//            and the meaning of the one reply line.
// Standards: clamd(8) "INSTREAM": "zINSTREAM\0", then chunks of
//            <uint32 big-endian length><data>, ended by a zero length; the
//            reply (NUL-terminated with the z prefix) is "stream: OK",
//            "stream: <name> FOUND" or "<text> ERROR" (for example
//            "INSTREAM size limit exceeded. ERROR").
// Trust:     the reply comes from the network; it is bounded by the caller
//            (kMaxReply) and only its shape is read; the malware name is
//            kept for the log, never sent to the SMTP client.
// Concurrency: pure functions.
// Errors:    parse_reply() never fails: an unreadable reply is an `error`.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace hikyaku::scan::clamd {

// The command that opens a stream (the 'z' form: NUL-delimited).
inline constexpr std::string_view kInstream{"zINSTREAM\0", 10};
// clamd's StreamMaxLength defaults to 25 MB; chunks are far below it.
constexpr size_t kChunk = 64 * 1024;
constexpr size_t kMaxReply = 4096;

// The 4-byte big-endian length prefix of a chunk of `size` octets (0: the end).
std::string chunk_header(uint32_t size);

struct Reply {
  enum class Kind { clean, found, error };
  Kind kind = Kind::error;
  std::string detail;  // the signature name (found), the error text (error), what was sent (clean, set by the client)
};

// One reply, without or with its NUL/LF terminator.
Reply parse_reply(std::string_view line);

}  // namespace hikyaku::scan::clamd
