// Purpose:   The control channel between the operator's commands and the
//            running server (`hikyaku queue flush`): one request line to
//            DATA_DIR/control, a Unix socket only the server's user may open,
//            and one reply line back. This file is the protocol, sans I/O:
//            parsing and formatting both lines; app/ serves the socket and
//            commands.cpp is the client.
// Grammar:   request = ("flush" [" id " QUEUE-ID] [" destination " DOMAIN]) CRLF
//            reply   = ("ok " | "error ") TEXT CRLF  (LF alone is accepted)
//            QUEUE-ID a spool id (queue::Spool::valid_id), DOMAIN a host name
//            (letters, digits, '-', '.'); each at most 255 octets.
// Trust:     the socket is owner-only (mode 0600 in an owner-only data
//            directory), but a request is still parsed as untrusted input:
//            at most kMaxControlLine octets, no other words.
// Errors:    a malformed request is an Error value naming what is wrong; the
//            server answers it with "error ...".
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "base/result.hpp"

namespace hikyaku::admin {

inline constexpr size_t kMaxControlLine = 1024;

// The socket's name in the data directory.
inline constexpr std::string_view kControlSocket = "control";

struct ControlRequest {
  enum class Kind { flush };
  Kind kind = Kind::flush;
  std::string queue_id;     // empty: every message
  std::string destination;  // empty: every destination
};

// One request line, with or without its line ending.
base::Result<ControlRequest> parse_control_request(std::string_view line);
// The request line as the client sends it (CRLF-terminated).
std::string format_control_request(const ControlRequest& request);

struct ControlReply {
  bool ok = false;
  std::string text;
};
std::string format_control_reply(const ControlReply& reply);
// A reply line; anything that is not "ok ..."/"error ..." is an error reply
// carrying the line as its text.
ControlReply parse_control_reply(std::string_view line);

}  // namespace hikyaku::admin
