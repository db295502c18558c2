// Purpose:   Messages hikyaku writes itself about a forward: the owner's
//            notice when a forward is diverted (build_notice) and the RFC
//            3464 DSN to the sender when a non-hidden forward fails for good
//            (mail::build_dsn). ReportWriter turns the facts a Disposition
//            carries into a complete GeneratedMessage — envelope with the
//            null reverse-path, plan and bytes — which the queue enqueues
//            like any other mail (durable, retried, marked origin notice /
//            dsn so it is never diverted or bounced). Nothing here touches
//            the spool or the scheduler.
// Standards: RFC 5322 (header fields), RFC 3464 (via mail::build_dsn),
//            RFC 3834 §5 (Auto-Submitted), RFC 5321 §4.5.5 (notices and DSNs
//            use the null reverse-path, so nothing answers them).
// Trust:     the original header values are untrusted: only From, Subject,
//            Date and Message-ID are copied into a notice, each as one line
//            of printable US-ASCII; no body byte is ever copied. A notice goes
//            to the forward address only (the owner); a DSN never contains a
//            hidden address (mail::build_dsn redacts them).
// Concurrency: immutable after construction; const methods, any thread.
// Errors:    a report that cannot be built (bad address, a sender in a local
//            domain we have no address for) is an Error value with the reason.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/result.hpp"
#include "config/config.hpp"
#include "mail/envelope.hpp"
#include "policy/delivery_policy.hpp"
#include "policy/slot.hpp"

namespace hikyaku::policy {

class AddressBook;

struct NoticeInput {
  std::string hostname;      // our HELO name (Message-ID right side)
  std::string from_domain;   // the original recipient's (local) domain
  NoticeFacts facts;
  std::string original_headers;  // header section of the diverted message
  std::string id_seed;           // unique: queue id + slot + time
};

// The notice, CRLF, US-ASCII: From: postmaster@<from_domain>, To: the
// forward address, a Subject stating the diversion, and a body with the
// original From, Subject, Date, Message-ID, the remote reply and where the
// message is now.
std::string build_notice(const NoticeInput& input);

// What a report needs to know about the message it is about.
struct OriginalMessage {
  std::string queue_id;
  TimePoint arrival{};
  std::optional<mail::Address> sender;
  std::string auth_user;  // the login that submitted it (Origin::submitted), else empty
  std::string headers;  // its header section
};

// A message to enqueue, complete.
struct GeneratedMessage {
  mail::Envelope envelope;  // null reverse-path
  std::vector<RecipientPlan> plan;
  std::string message;      // CRLF
  Origin origin = Origin::notice;
};

class ReportWriter {
 public:
  // `book` (may be null: tests and tools) knows our SRS addresses: a DSN
  // to a sender that is one of them takes that address's plan.
  explicit ReportWriter(const config::Config& config, const AddressBook* book = nullptr);

  base::Result<GeneratedMessage> notice(const OriginalMessage& original, const NoticeFacts& facts) const;
  base::Result<GeneratedMessage> dsn(const OriginalMessage& original, const DsnFacts& facts) const;

  // Where a DSN to `sender` goes: the submitting login's own mailbox for
  // submitted mail (`auth_user`: it never leaves the server); else the
  // mailbox targets of a local address (all its targets when it has none),
  // else forward:<sender> through the SMTP agent; a sender that is one of
  // our SRS addresses (mail that came back to us through a forward elsewhere)
  // reversed as a bounce to it would be; empty when the sender claims a
  // local domain we have no address for, or an SRS address that is not
  // valid (nobody to tell).
  std::vector<mail::Target> dsn_targets(const std::string& sender, const std::string& auth_user = {}) const;

 private:
  const config::Config& config_;
  const AddressBook* book_;
  std::vector<std::string> hidden_;
};

}  // namespace hikyaku::policy
