// Purpose:   The scanners as intake sees them (issue 17 item 1): ask every
//            configured scanner about one message and report what each
//            said. scan/client.hpp implements it over the network (clamd,
//            rspamd); tests use a fake. Kept here, without Asio, so that
//            intake depends on nothing that does I/O.
// Trust:     the message and envelope are untrusted; see scan/protocol/*.
// Concurrency: scan() is called on the event loop; `done` is called once,
//            on the event loop, possibly before scan() returns.
// Errors:    never fails: a scanner that cannot be asked is part of the
//            Report (verdict.hpp decides with [scan] on_failure).
#pragma once

#include <functional>

#include "mail/envelope.hpp"
#include "mail/message.hpp"
#include "scan/protocol/verdict.hpp"

namespace hikyaku::scan {

class Scanner {
 public:
  virtual ~Scanner() = default;
  // `envelope` and `message` must stay alive until `done` has been called.
  virtual void scan(const mail::Envelope& envelope, const mail::Message& message,
                    std::function<void(Report)> done) = 0;
  virtual OnFailure on_failure() const = 0;
};

}  // namespace hikyaku::scan
