// Purpose:   Where the SMTP server hands an accepted message: the queue's
//            single entry point (Postfix's cleanup). The session calls it on
//            a worker thread because it blocks on fsync; it must return only
//            once the message is durable (DESIGN.md: 250 after DATA only when
//            written, fsynced and renamed). Two optional policy hooks sit in
//            front of the store (issue 4): accept() may refuse a message at
//            end of DATA (DMARC p=reject) and screen_recipient() may decide a
//            recipient before the address policy (SRS bounce addresses).
// Standards: RFC 5321 §3.3 (RCPT and end-of-DATA replies), §4.2.5 (a
//            refusal after the final dot means nothing was stored).
// Trust:     the hooks see untrusted envelope and message bytes.
// Concurrency: store() and accept() run on a worker thread (they may block
//            on fsync and on DNS); screen_recipient() runs on the session's
//            executor and must not block.
// Errors:    an Error means "not stored": the session answers 451 4.3.0. A
//            refusal is a value (StoreResult::refusal) sent as is.
#pragma once

#include <optional>
#include <string>
#include <utility>

#include "base/result.hpp"
#include "mail/address.hpp"
#include "mail/envelope.hpp"
#include "mail/reply.hpp"

namespace hikyaku::smtp::server {

// The end-of-DATA outcome: stored under `queue_id`, or refused with
// `refusal` (a 5xx/4xx reply; nothing was stored).
struct StoreResult {
  std::string queue_id;
  std::optional<mail::Reply> refusal;

  static StoreResult stored(std::string id) { return StoreResult{std::move(id), std::nullopt}; }
  static StoreResult refused(mail::Reply reply) { return StoreResult{{}, std::move(reply)}; }
};

class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // `message` is the full message as it will be delivered (our Received
  // header first, CRLF line endings, dot-unstuffed). Returns the queue id.
  virtual base::Result<std::string> store(const mail::Envelope& envelope, std::string message) = 0;

  // What the session calls at the end of DATA. A sink that checks messages
  // (authentication, issue 4) overrides it and may refuse; by default every
  // message is stored.
  virtual base::Result<StoreResult> accept(const mail::Envelope& envelope, std::string message) {
    auto id = store(envelope, std::move(message));
    if (!id) return id.error();
    return StoreResult::stored(std::move(id).value());
  }

  // RCPT: nullopt lets the address policy decide; a reply decides instead
  // (2xx accepts the recipient, anything else refuses it with that reply).
  virtual std::optional<mail::Reply> screen_recipient(const mail::Address& /*rcpt*/) const { return std::nullopt; }
};

}  // namespace hikyaku::smtp::server
