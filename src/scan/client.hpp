// Purpose:   The network side of scanning (issue 17 item 1): asks ClamAV's
//            clamd (INSTREAM over a Unix or TCP socket) and rspamd (HTTP
//            POST /checkv2 over TCP, Nagle off) about one message, both at
//            once, each within [scan] timeout, and reports what each said
//            (scan/protocol/scanner.hpp). A fresh connection per message: a
//            scan costs far more than a connect on loopback. clamd is sent
//            the whole message, or with [scan] clamd_scope = "attachments"
//            each attachment decoded (mail/mime.hpp has the rule), one
//            INSTREAM and connection per attachment, none for a message
//            without one (a large message's body file is mapped for the
//            MIME walker).
// Standards: clamd(8) INSTREAM; rspamd protocol; RFC 9112.
// Trust:     sends untrusted message bytes to local daemons the operator
//            configured; their answers are bounded (clamd::kMaxReply,
//            rspamd::kMaxResponse) and parsed sans-I/O.
// Concurrency: the sockets, timers and `done` are on the single-threaded
//            event loop it is given (scan() is called there); what would
//            hold the loop runs on `blocking`, the loop waiting for it
//            without blocking: the MIME walk (the body file mapped and
//            read), each attachment's decoding (one at a time), and the
//            reads of a large message's body file; a message of at most
//            64 KiB held in memory is walked and decoded on the loop. The
//            message must stay unchanged until `done` (it is read on both).
// Errors:    a connect error, a timeout, a reset or an unreadable answer is
//            reported in the Report (never thrown).
#pragma once

#include <memory>

#include "config/config.hpp"
#include "net/asio.hpp"
#include "scan/protocol/scanner.hpp"

namespace hikyaku::scan {

class Client final : public Scanner {
 public:
  // `executor` is the event loop's; `blocking` (the server's blocking
  // pool) must outlive the client and every scan it started.
  Client(config::Scan settings, net::asio::any_io_executor executor, net::asio::thread_pool& blocking);
  ~Client() override;
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  void scan(const mail::Envelope& envelope, const mail::Message& message, std::function<void(Report)> done) override;
  OnFailure on_failure() const override;

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace hikyaku::scan
