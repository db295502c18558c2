// Purpose:   Messages hikyaku writes itself about a forward (issue 3):
//            the owner's notice when a forward is diverted (build_notice) and
//            the RFC 3464 DSN to the sender when a non-hidden forward fails
//            for good (mail::build_dsn). Reporter (policy::Reports) builds
//            them and puts them into the normal queue as new messages with
//            the null reverse-path, so they are durable and retried like
//            any other mail, and marked in the spool (origin notice / dsn)
//            so the FallbackPolicy never diverts or bounces them.
// Standards: RFC 5322 (header fields), RFC 3464 (via mail::build_dsn),
//            RFC 3834 §5 (Auto-Submitted), RFC 5321 §4.5.5 (notices and
//            DSNs use the null reverse-path, so nothing answers them).
// Trust:     the original header values are untrusted: only From, Subject,
//            Date and Message-ID are copied, each as one line of printable
//            US-ASCII; no body byte and no attachment is ever copied. A
//            notice goes to the forward address only (the owner); a DSN never
//            contains a hidden address (mail::build_dsn redacts them).
// Concurrency: Reporter's hooks run on scheduler threads concurrently:
//            Spool::enqueue and the submit callback are thread-safe.
// Errors:    a notice or DSN that cannot be queued is logged and dropped;
//            the original message's state is never affected.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "policy/fallback.hpp"
#include "queue/spool.hpp"

namespace hikyaku::delivery {

struct NoticeInput {
  std::string hostname;      // our HELO name (Message-ID right side)
  std::string from_domain;   // the original recipient's (local) domain
  policy::NoticeFacts facts;
  std::string original_headers;  // header section of the diverted message
  std::string id_seed;           // unique: queue id + slot + time
};

// The notice, CRLF, US-ASCII: From: postmaster@<from_domain>, To: the
// forward address, a Subject stating the diversion, and a body with the
// original From, Subject, Date, Message-ID, the remote reply and where the
// message is now.
std::string build_notice(const NoticeInput& input);

class Reporter final : public policy::Reports {
 public:
  // `submit` hands a new queue id to the scheduler (Scheduler::submit).
  Reporter(const config::Config& config, queue::Spool& spool, std::function<void(const std::string&)> submit);

  void notice(const queue::SpooledMessage& original, const policy::NoticeFacts& facts) override;
  void dsn(const queue::SpooledMessage& original, const policy::DsnFacts& facts) override;

  // Where a DSN to `sender` goes: the mailbox targets of a local address
  // (all its targets when it has none), else forward:<sender> through the
  // SMTP agent; empty when the sender claims a local domain we have no
  // address for (nobody to tell: dropped and logged).
  std::vector<mail::Target> dsn_targets(const std::string& sender) const;

 private:
  std::string original_headers(const queue::SpooledMessage& original) const;

  const config::Config& config_;
  queue::Spool& spool_;
  std::function<void(const std::string&)> submit_;
};

}  // namespace hikyaku::delivery
