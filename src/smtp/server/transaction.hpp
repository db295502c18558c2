// Purpose:   One SMTP mail transaction (MAIL, RCPT..., DATA) kept apart from
//            the session state, as OpenSMTPD's smtp_tx: begin at MAIL,
//            recipients added at RCPT, commit hands the envelope over at the
//            end of DATA, rollback is RSET (and every refused DATA).
// Standards: RFC 5321 §3.3 (mail transactions), §4.1.1.5 (RSET).
// Trust:     holds addresses that were already parsed and checked.
// Concurrency: owned by one session.
// Errors:    misuse (commit without begin) is a bug: HIKYAKU_CHECK.
#pragma once

#include <optional>
#include <utility>

#include "base/result.hpp"
#include "mail/envelope.hpp"
#include "smtp/protocol/command.hpp"

namespace hikyaku::smtp::server {

class Transaction {
 public:
  // MAIL FROM: start a transaction (RFC 5321 §4.1.1.2 clears any previous one).
  void begin(std::optional<mail::Address> sender, const protocol::MailParameters& params) {
    rollback();
    active_ = true;
    envelope_.sender = std::move(sender);
    envelope_.body_8bit = params.body == protocol::BodyType::eight_bit_mime;
    envelope_.smtputf8 = params.smtputf8;
    declared_size_ = params.size;
  }
  void add_recipient(mail::Address rcpt) {
    HIKYAKU_CHECK(active_);
    envelope_.recipients.push_back(std::move(rcpt));
  }
  bool active() const { return active_; }
  size_t recipient_count() const { return envelope_.recipients.size(); }
  const mail::Envelope& envelope() const { return envelope_; }
  std::optional<uint64_t> declared_size() const { return declared_size_; }

  // End of DATA with an accepted message: hand out the envelope and reset.
  mail::Envelope commit() {
    HIKYAKU_CHECK(active_ && !envelope_.recipients.empty());
    mail::Envelope out = std::move(envelope_);
    rollback();
    return out;
  }
  // RSET, a refused message, STARTTLS, a new EHLO: forget everything.
  void rollback() {
    active_ = false;
    envelope_ = mail::Envelope{};
    declared_size_.reset();
  }

 private:
  bool active_ = false;
  mail::Envelope envelope_;
  std::optional<uint64_t> declared_size_;
};

}  // namespace hikyaku::smtp::server
