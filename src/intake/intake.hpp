// Purpose:   Intake, Postfix's cleanup: the only consumer of a finished
//            SMTP message (smtp::server::MessageSink). At MAIL (after AUTH)
//            and RCPT it answers from the address book (send_as, local
//            users, SRS bounce addresses, relaying only when authenticated)
//            and, at RCPT, from the recorded usage of the recipient's
//            mailboxes with a quota (452 4.2.2 when one is full).
//            Submitted mail (authenticated: envelope.auth_user) skips the
//            inbound checks; its From: must be one of the login's send_as
//            addresses (553 5.7.1), then it is planned and staged like any
//            other, as Origin::submitted. At the end of DATA, in this order:
//            1. the inbound checks (SPF, DKIM, ARC, DMARC: auth/inbound) on
//               received mail; our Authentication-Results replaces any
//               forged one, after our Received field; a DMARC p=reject
//               failure is refused (550 5.7.1) when every recipient's
//               domain asks for it (dmarc_inbound = "reject");
//            1b. the scanners ([scan]: clamd, rspamd; scan/protocol/verdict.hpp),
//               on received mail: malware 554 5.7.0, spam "reject" 550
//               5.7.1, "soft reject"/"greylist" or a failed scanner (with
//               on_failure = "tempfail") 451 4.7.1; spam to keep ("add
//               header") gets X-Spam-* fields first in the stored copy
//               (taken off again by every SMTP delivery) and its forwards
//               follow their `spam` option (item 2);
//            2. each recipient's plan, with one delivery per target per
//               message however the recipient was spelled (case, source
//               route, a second alias of the same mailbox): a target
//               planned for an earlier recipient is not planned again;
//            3. the stage (Spool::stage: memory only) and the hand-off to
//               the scheduler (Scheduler::submit_staged: forwards start now,
//               from memory — a large message's body from its receipt file
//               — while the commit syncs);
//            4. commit() (Spool::commit: written, fsynced, renamed) — the
//               session's 250 waits for it.
// Standards: RFC 5321 §3.3 (RCPT), §4.2.5, RFC 8601 §5, RFC 7489 §6.6.4 and
//            §10.3 (rejecting at SMTP time: 550 5.7.1).
// Trust:     untrusted envelope and message; reply texts are fixed and never
//            name a forward or a configuration detail.
// Concurrency: check_recipient() and admit() are called on the event loop,
//            the thread that drives `resolver`: the checks run there, as a
//            sans-I/O decision re-run with more answers until it has all it
//            asked for (dns::resolve_then); they never wait on DNS. Their CPU
//            is bounded by the verifiers' limits (10 DKIM signatures, 50 ARC
//            sets, SPF's 10 lookups). Plan, stage and submit follow on the
//            loop; `done` is called there, possibly before admit() returns.
//            A large message (mail::Message with its body in a file) first
//            has its body hashed once on the blocking pool (the DKIM and AMS
//            body hashes its signatures name: auth::inbound::body_hashes_of),
//            then goes the same way. commit() and body_file() block (fsync, a
//            file create): the session runs them on the blocking pool.
// Errors:    a failed stage or commit, or an unreadable body file, is an
//            Error (the session answers 451/452); the checks never fail
//            (DNS trouble is temperror).
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "auth/common/body_hashes.hpp"
#include "auth/dmarc/public_suffix.hpp"
#include "base/executor.hpp"
#include "config/config.hpp"
#include "dns/async_resolver.hpp"
#include "base/live.hpp"
#include "policy/address_book.hpp"
#include "policy/rules.hpp"
#include "policy/slot.hpp"
#include "queue/scheduler.hpp"
#include "queue/spool.hpp"
#include "scan/protocol/scanner.hpp"
#include "smtp/server/message_sink.hpp"

namespace hikyaku::intake {

// Intake's part of the configuration.
struct Settings {
  std::string authserv_id;  // our Authentication-Results' authserv-id: `hostname` (RFC 8601 §2.5)
  bool psl_discovery = false;  // [dmarc] method = "psl": DMARC finds the organizational domain by the PSL
  // The [[domain]]s with dmarc_inbound = "reject", lower case.
  std::set<std::string> dmarc_reject_domains;

  static Settings from(const config::Config& config);
};

class Intake final : public smtp::server::MessageSink {
 public:
  // All references must outlive the intake; `psl` may be null (tree-walk
  // DMARC discovery, whatever the settings say).
  // `loop` runs on the thread that drives `resolver`; `blocking` may
  // block (a large message's body is hashed there). Each question (a
  // sender, a recipient, a message's plans) reads the rules current then.
  Intake(Settings settings, const base::Live<policy::Rules>& rules, dns::AsyncResolver& resolver,
         const auth::dmarc::PublicSuffixList* psl, queue::Spool& spool, queue::Scheduler& scheduler,
         base::Executor& loop, base::Executor& blocking, scan::Scanner* scanner = nullptr);

  std::optional<mail::Reply> check_sender(const std::optional<mail::Address>& sender, std::string_view login) override;
  std::optional<mail::Reply> check_recipient(const mail::Address& rcpt, bool authenticated) override;
  base::Result<std::pair<base::UniqueFd, std::filesystem::path>> body_file() override;
  void admit(mail::Envelope envelope, mail::Message message, Admitted done) override;
  // Every hidden forward address of the current rules as "<hidden>".
  std::string log_text(std::string_view text) const override;

  // The delivery plans of an envelope: one per recipient, no target twice
  // in the message (item 2 above); a recipient whose every target is
  // already planned has no plan of its own. For `spam`, a forward whose
  // [[forward]] keeps spam local (the default) is left out; a recipient
  // left with no mailbox gets that forward's fallback mailbox instead (the
  // last mailbox of its chain), and when there is none the forward stays.
  std::vector<policy::RecipientPlan> plans(const mail::Envelope& envelope, bool spam = false) const;

  // DMARC inbound policy of a message's recipients: reject only when every
  // recipient's [[domain]] says dmarc_inbound = "reject" (one reply covers
  // the whole transaction, so a "tag" recipient keeps its mail).
  bool rejects_dmarc_failures_for(const mail::Envelope& envelope) const;

 private:
  // 452 4.2.2 when a mailbox the recipient is delivered to is at its quota.
  std::optional<mail::Reply> check_quotas(const policy::Rules& rules, const mail::Address& rcpt,
                                          bool authenticated) const;
  struct Received {
    mail::Envelope envelope;
    mail::Message message;
    std::shared_ptr<const auth::common::BodyHashes> body_hashes;  // a large message's (its body is in a file)
  };
  void check(const std::shared_ptr<Received>& received, Admitted done);
  // 1b: the scanners, then stage().
  void scan(const std::shared_ptr<Received>& received, Admitted done);
  // After the checks: plans, stage, submit.
  base::Result<smtp::server::Admission> stage(const mail::Envelope& envelope, mail::Message message,
                                              policy::Origin origin, bool spam = false);
  // Submitted mail: its From: must be one of the login's send_as
  // addresses (nullopt: it is).
  std::optional<mail::Reply> check_author(const mail::Envelope& envelope, std::string_view message) const;

  const Settings settings_;
  const base::Live<policy::Rules>& rules_;  // each question reads the current address book
  dns::AsyncResolver& resolver_;
  const auth::dmarc::PublicSuffixList* psl_;
  queue::Spool& spool_;
  queue::Scheduler& scheduler_;
  base::Executor& loop_;
  base::Executor& blocking_;
  scan::Scanner* scanner_;  // null: no [scan]
};

}  // namespace hikyaku::intake
