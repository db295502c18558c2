// Purpose:   Where the SMTP server hands an accepted message: the queue's
//            single entry point (Postfix's cleanup). The end of DATA is two
//            steps: admit() decides and takes the message without making it
//            durable (checks, plan, and a forward may already start:
//            "forward at once"); the PendingMessage's commit() makes it
//            durable and only then may the session answer 250 (DESIGN.md:
//            250 after DATA only when written, fsynced and renamed). Between
//            the two the session's executor runs once, so a forward started
//            by admit() is on the wire before the commit's disk work
//            competes with it for the CPU. admit_now() is admit() for the
//            event loop itself: it decides only from what is at hand (cached
//            DNS answers) and declines otherwise, so that a message whose
//            checks need nothing new skips the hand-off to a worker thread
//            and back (two thread wake-ups, 0.1-0.2 ms each on a VM, on the
//            way to the far side). Two optional policy hooks sit in front of
//            the store (issue 4): admit() may refuse a message at end of
//            DATA (DMARC p=reject) and screen_recipient() may decide a
//            recipient before the address policy (SRS bounce addresses).
// Standards: RFC 5321 §3.3 (RCPT and end-of-DATA replies), §4.2.5 (a
//            refusal after the final dot means nothing was stored).
// Trust:     the hooks see untrusted envelope and message bytes.
// Concurrency: store(), admit() and commit() run on a worker thread (they
//            may block on DNS and fsync); admit_now() and screen_recipient()
//            run on the session's executor and must not block.
// Errors:    an Error means "not stored": the session answers 452 4.3.1
//            when Error::out_of_space() (ENOSPC, EDQUOT: the errno travels
//            in the Error), else 451 4.3.0. A refusal is a value
//            (Admission::refusal) sent as is.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "base/result.hpp"
#include "mail/address.hpp"
#include "mail/envelope.hpp"
#include "mail/reply.hpp"

namespace hikyaku::smtp::server {

// A message a sink has taken but not yet made durable. commit() makes it
// durable and returns its queue id; destroying it without a successful
// commit() abandons it (nothing is stored; the client will retry).
class PendingMessage {
 public:
  virtual ~PendingMessage() = default;
  virtual base::Result<std::string> commit() = 0;
};

// What admit() decided: refused with `refusal` (a 5xx/4xx reply; nothing was
// taken), or taken, to be committed through `pending`.
struct Admission {
  std::optional<mail::Reply> refusal;
  std::unique_ptr<PendingMessage> pending;

  static Admission refused(mail::Reply reply) { return Admission{std::move(reply), nullptr}; }
};

class MessageSink {
 public:
  virtual ~MessageSink() = default;
  // `message` is the full message as it will be delivered (our Received
  // header first, CRLF line endings, dot-unstuffed). Stores it durably in
  // one step and returns the queue id.
  virtual base::Result<std::string> store(const mail::Envelope& envelope, std::string message) = 0;

  // What the session calls at the end of DATA. A sink that checks messages
  // (authentication, issue 4) overrides it and may refuse; a sink that can
  // start work before the message is durable (the spool) overrides it to
  // return a message still to be committed. By default every message is
  // stored here, and commit() only reports the id.
  virtual base::Result<Admission> admit(const mail::Envelope& envelope, std::string message);

  // admit() on the event loop, from what is at hand: nullopt when deciding
  // would block (a DNS answer not cached): nothing was done, `message` is
  // untouched, and the session calls admit() on a worker instead. With a
  // value, `message` was taken (moved from). Default: always declines.
  virtual std::optional<base::Result<Admission>> admit_now(const mail::Envelope& /*envelope*/,
                                                           std::string& /*message*/) {
    return std::nullopt;
  }

  // admit() and commit() in one call: the queue id, or the refusal.
  struct Stored {
    std::string queue_id;
    std::optional<mail::Reply> refusal;
  };
  base::Result<Stored> accept(const mail::Envelope& envelope, std::string message);

  // RCPT: nullopt lets the address policy decide; a reply decides instead
  // (2xx accepts the recipient, anything else refuses it with that reply).
  virtual std::optional<mail::Reply> screen_recipient(const mail::Address& /*rcpt*/) const { return std::nullopt; }
};

}  // namespace hikyaku::smtp::server
