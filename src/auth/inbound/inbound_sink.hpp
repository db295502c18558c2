// Purpose:   The authenticating front of the queue's entry point: a
//            smtp::server::MessageSink that, at the end of DATA, runs the
//            inbound checks (checker.hpp) on received mail, refuses DMARC
//            p=reject failures for domains that ask for it
//            (dmarc_inbound = "reject"), stamps our Authentication-Results
//            after our Received field, and hands the message to the inner
//            sink (the spool). At RCPT it answers for SRS bounce addresses
//            (srs_bounces.hpp).
// Standards: RFC 8601 §5 (add ours, remove forged ones), RFC 7489 §6.6.4
//            and §10.3 (rejecting at SMTP time: 550 5.7.1), RFC 5321 §4.2.5.
// Trust:     untrusted message and envelope; the reply texts are fixed and
//            never name a forward or a configuration detail.
// Concurrency: admit()/store() run on the session's worker pool (they
//            block on DNS and fsync); admit_now() and screen_recipient() on
//            the session's executor (no I/O: admit_now() runs the checks
//            against a dns::CacheOnlyResolver and declines on a miss; their
//            CPU is bounded by the verifiers' limits, checker.hpp). The object is immutable after construction.
// Errors:    the inner sink's errors pass through (451 4.3.0); checks never
//            fail (DNS trouble is a temperror result, the mail is accepted).
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "auth/dmarc/public_suffix.hpp"
#include "auth/inbound/srs_bounces.hpp"
#include "config/config.hpp"
#include "dns/resolver.hpp"
#include "smtp/server/message_sink.hpp"

namespace hikyaku::auth::inbound {

class InboundSink final : public smtp::server::MessageSink {
 public:
  // All references must outlive the sink. `srs` and `psl` may be null
  // (no [srs]; tree-walk discovery).
  InboundSink(const config::Config& config, dns::Resolver& resolver, smtp::server::MessageSink& inner,
              const SrsBounces* srs, const dmarc::PublicSuffixList* psl);

  base::Result<std::string> store(const mail::Envelope& envelope, std::string message) override;
  base::Result<smtp::server::Admission> admit(const mail::Envelope& envelope, std::string message) override;
  std::optional<base::Result<smtp::server::Admission>> admit_now(const mail::Envelope& envelope,
                                                                 std::string& message) override;
  std::optional<mail::Reply> screen_recipient(const mail::Address& rcpt) const override;

  // DMARC inbound policy of a message's recipients: reject only when every
  // recipient's [[domain]] says dmarc_inbound = "reject" (one reply covers
  // the whole transaction, so a "tag" recipient keeps its mail).
  bool rejects_for(const mail::Envelope& envelope) const;

 private:
  // The checks against `dns` and what they decide: refused, or the message
  // stamped with our Authentication-Results; `summary` is the log line.
  struct Decision {
    std::optional<mail::Reply> refusal;
    std::string stamped;
    std::string summary;
  };
  Decision decide(const mail::Envelope& envelope, std::string_view message, dns::Resolver& dns) const;

  const config::Config& config_;
  dns::Resolver& resolver_;
  smtp::server::MessageSink& inner_;
  const SrsBounces* srs_;
  const dmarc::PublicSuffixList* psl_;
};

}  // namespace hikyaku::auth::inbound
