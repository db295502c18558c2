// Purpose:   An SMTP reply as a value: code, enhanced status, text. Command
//            handlers return Replies; they never throw (STYLE R6). The text
//            is what the peer sees; the reason for the log is kept apart by
//            the caller (STYLE R6: client-visible text vs log reason).
// Standards: RFC 5321 §4.2 (reply codes, multiline replies),
//            RFC 3463 / RFC 2034 (enhanced status codes).
// Trust:     texts are ours; never put configuration details or hidden
//            forward addresses in them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace hikyaku::mail {

struct Reply {
  int code = 250;
  std::string status;  // enhanced status "2.1.0"; empty when not applicable
  std::vector<std::string> lines;  // one or more lines of text

  Reply() = default;
  Reply(int c, std::string st, std::string text) : code(c), status(std::move(st)), lines{std::move(text)} {}

  bool positive() const { return code >= 200 && code < 400; }
  bool transient() const { return code >= 400 && code < 500; }
  bool permanent() const { return code >= 500; }

  // Wire form, CRLF-terminated; multiline with "250-" continuation.
  // `enhanced` false omits the status (for peers that did not EHLO).
  std::string wire(bool enhanced = true) const;
  // One line for logs: "550 5.1.1 text".
  std::string summary() const;
};

}  // namespace hikyaku::mail
