// Purpose:   Mail addressed to an SRS address of our [srs] domain is a
//            bounce (or reply) to a message we forwarded. Decide it at RCPT
//            and plan its delivery: invalid or expired → 550 5.1.1; signed
//            with a hidden forward's derived key → that forward's fallback
//            mailbox (the original sender must never see the bounce: it
//            names the hidden address); signed with the plain secret →
//            reversed to the original sender (forward:<sender>).
// Standards: SRS (srs/srs.hpp), RFC 5321 §3.3 (RCPT refusal), §4.5.5
//            (bounces carry the null reverse-path), DESIGN.md "Delivery
//            semantics" (hidden forwards never bounce to the sender).
// Trust:     recipient local parts are untrusted and only decoded; the SRS
//            secrets stay in the Rewriter; replies never name a forward.
// Concurrency: immutable after construction; screen() and plan() are
//            const, cheap (a few HMACs) and safe from any thread.
// Errors:    verdicts are values.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "base/clock.hpp"
#include "config/config.hpp"
#include "mail/address.hpp"
#include "mail/reply.hpp"
#include "srs/srs.hpp"

namespace hikyaku::auth::inbound {

class SrsBounces {
 public:
  // `secrets` as read from [srs] secret_file (the first signs). The hidden
  // forwards of `config` become the Rewriter's identities.
  SrsBounces(const config::Config& config, std::vector<std::string> secrets, const base::Clock& clock);

  // Is `rcpt` an SRS address of our [srs] domain?
  bool applies(const mail::Address& rcpt) const;
  // RCPT: nullopt when not ours; 250 for a valid address; 550 5.1.1 else.
  std::optional<mail::Reply> screen(const mail::Address& rcpt) const;
  // The delivery plan of a valid SRS recipient; nullopt when not one.
  std::optional<std::vector<mail::Target>> plan(const mail::Address& rcpt) const;

 private:
  const config::Config& config_;
  srs::Rewriter rewriter_;
};

}  // namespace hikyaku::auth::inbound
