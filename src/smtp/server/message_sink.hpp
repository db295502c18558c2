// Purpose:   What the SMTP server hands a message to: the interface the
//            session sees of intake (src/intake, Postfix's cleanup), so that
//            smtp never depends on what lies above it. At RCPT the sink says
//            whether a recipient is accepted; at the end of DATA admit()
//            decides (checks, plans) and takes the message without making it
//            durable — its forwards may already start ("forward at once") —
//            and the PendingMessage's commit() makes it durable; only then
//            may the session answer 250 (DESIGN.md: 250 after DATA only when
//            written, fsynced and renamed).
// Standards: RFC 5321 §3.3 (RCPT and end-of-DATA replies), §4.2.5 (a
//            refusal after the final dot means nothing was stored).
// Trust:     the sink sees untrusted envelope and message bytes.
// Concurrency: check_recipient() and admit() are called on the event loop
//            and never block; admit()'s `done` may be called on any thread
//            (the session resumes on its own executor). commit() (fsync)
//            and body_file() block: the session runs them on the blocking
//            pool.
// Errors:    an Error means "not stored": the session answers 452 4.3.1
//            when Error::out_of_space() (ENOSPC, EDQUOT: the errno travels
//            in the Error), else 451 4.3.0. A refusal is a value
//            (Admission::refusal) sent as is.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "base/result.hpp"
#include "mail/address.hpp"
#include "mail/envelope.hpp"
#include "mail/message.hpp"
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

  // MAIL FROM of an authenticated session (`login`: the mailbox that
  // logged in; the null sender is `nullopt`): nullopt accepts the sender
  // (250); a reply (553 5.7.1) refuses it.
  virtual std::optional<mail::Reply> check_sender(const std::optional<mail::Address>& sender,
                                                  std::string_view login) = 0;

  // RCPT: nullopt accepts the recipient (250 2.1.5); a reply refuses it.
  virtual std::optional<mail::Reply> check_recipient(const mail::Address& rcpt, bool authenticated) = 0;

  // Where a large message's body goes as it arrives (mail::Message): a
  // new file without a name, open for reading and writing, and the
  // directory it is in (for error messages). Called on the blocking pool.
  virtual base::Result<std::pair<base::UniqueFd, std::filesystem::path>> body_file() = 0;

  // The end of DATA. `message` is the full message as it will be delivered
  // (our Received header first, CRLF line endings, dot-unstuffed); a large
  // one has its body in a file from body_file(). `envelope.auth_user` is
  // the login of an authenticated session (submitted mail). `done` is
  // called exactly once, with the admission or an error.
  using Admitted = std::function<void(base::Result<Admission>)>;
  virtual void admit(mail::Envelope envelope, mail::Message message, Admitted done) = 0;

  // Text for the session's log lines (an envelope address, a list of
  // them) with every hidden forward's address as "<hidden>" (the owner
  // writing from it, or to it by submission): no log line names one.
  virtual std::string log_text(std::string_view text) const = 0;
};

}  // namespace hikyaku::smtp::server
