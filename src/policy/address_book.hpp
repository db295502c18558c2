// Purpose:   Which recipients are ours and where their mail goes: the RCPT
//            verdict (no backscatter: an unknown local user is refused at
//            RCPT, never bounced later; never an open relay) and each
//            recipient's ordered targets (DESIGN.md "delivery plan"). Mail
//            to an SRS address of our [srs] domain is a bounce (or reply) to
//            a message we forwarded: invalid or expired → refused; signed
//            with a hidden forward's derived key → that forward's fallback
//            mailbox (the original sender must never see the bounce: it
//            names the hidden address); signed with the plain secret →
//            reversed to the original sender (forward:<sender>).
//            An authenticated user (submission) may relay to any address,
//            and may send only as its own send_as addresses.
//            Gateway (issue 14): a recipient listed in the `recipients` of
//            the [[route]] that matches it is accepted from anyone and
//            planned relay:<rcpt> (relayed unchanged to that next hop); a
//            recipient of a local domain that a rule naming its address or
//            domain sends to another host is planned the same way (the `*`
//            rule never takes a local domain's mail). Every remote target of
//            a plan whose rule has copy_to gets that mailbox added.
// Standards: RFC 5321 §3.3 (RCPT replies), §7.1 (no open relay), §4.5.5
//            (bounces carry the null reverse-path), SRS (srs/srs.hpp),
//            RFC 6409 §6.1 (the submission server checks the sender).
// Trust:     addresses come from the network and are only compared or
//            decoded; the configuration is trusted; the SRS secrets stay in
//            the Rewriter.
// Concurrency: immutable after construction; const methods, any thread.
// Errors:    verdicts are values.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "base/clock.hpp"
#include "config/config.hpp"
#include "mail/address.hpp"
#include "mail/target.hpp"

namespace hikyaku::srs {
class Rewriter;
}

namespace hikyaku::policy {

enum class RcptVerdict {
  accept,        // 250 2.1.5
  unknown_user,  // 550 5.1.1: local domain, no such address
  bad_srs,       // 550 5.1.1: an SRS address of ours that is invalid or expired
  relay_denied,  // 554 5.7.1: not our domain and not authenticated
};

class AddressBook {
 public:
  // `srs_secrets` as read from [srs] secret_file (the first signs; empty:
  // no SRS bounce handling). The hidden forwards of `config` become the
  // Rewriter's identities. `config` and `clock` must outlive the book.
  AddressBook(const config::Config& config, std::vector<std::string> srs_secrets, const base::Clock& clock);
  explicit AddressBook(const config::Config& config);
  ~AddressBook();
  AddressBook(const AddressBook&) = delete;
  AddressBook& operator=(const AddressBook&) = delete;

  RcptVerdict check_recipient(const mail::Address& rcpt, bool authenticated) const;
  // The plan of an accepted recipient. A recipient outside our domains
  // (relayed for an authenticated user) is sent there: forward:<rcpt>,
  // by its domain's MX; unauthenticated, it has no plan.
  std::vector<mail::Target> plan(const mail::Address& rcpt, bool authenticated = false) const;
  // Sender authorisation (issue 13): may the [[mailbox]] `login` send as
  // `address` (MAIL FROM, From:)? Only its send_as addresses, compared
  // without regard to case.
  bool may_send_as(std::string_view login, const mail::Address& address) const;
  // An address under our SRS domain that looks like SRS (valid or not):
  // plan() reverses it as a bounce.
  bool is_srs(const mail::Address& rcpt) const;

 private:
  static bool is_gateway_recipient(const config::Route& rule, const mail::Address& rcpt);
  std::vector<mail::Target> route_plan(const mail::Address& rcpt, bool authenticated) const;
  std::vector<mail::Target> with_copies(std::vector<mail::Target> plan) const;
  bool is_postmaster(const mail::Address& rcpt) const;
  std::vector<mail::Target> srs_plan(const mail::Address& rcpt) const;

  const config::Config& config_;
  std::unique_ptr<srs::Rewriter> srs_;
};

}  // namespace hikyaku::policy
