// Purpose:   Where the SMTP server hands an accepted message: the queue's
//            single entry point (Postfix's cleanup). The session calls it on
//            a worker thread because it blocks on fsync; it must return only
//            once the message is durable (DESIGN.md: 250 after DATA only when
//            written, fsynced and renamed).
// Errors:    an Error means "not stored": the session answers 451 4.3.0.
#pragma once

#include <string>

#include "base/result.hpp"
#include "mail/envelope.hpp"

namespace hikyaku::smtp::server {

class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // `message` is the full message as it will be delivered (our Received
  // header first, CRLF line endings, dot-unstuffed). Returns the queue id.
  virtual base::Result<std::string> store(const mail::Envelope& envelope, std::string message) = 0;
};

}  // namespace hikyaku::smtp::server
