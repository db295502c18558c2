// Purpose:   The gateway's recipient check (issue 14 item 3): for a [[route]]
//            with verify_recipients = true, ask its next hop "RCPT TO" (MAIL
//            FROM:<>, RCPT, RSET; nothing is sent) before our 250, and keep
//            the answer: a yes for `positive_ttl`, a no for `negative_ttl`,
//            so the gateway accepts only what it can deliver and a client
//            cannot use it to probe the next hop at its own pace. A next hop
//            that cannot be asked (down, 4xx) gives 451: the sender retries,
//            nothing is accepted blind.
// Standards: RFC 5321 §3.3, §4.2.5 (451), §7.1; the "callout" of Exim and
//            Postfix's reject_unverified_recipient, without their probe
//            messages (MAIL FROM:<> and RSET only).
// Trust:     the address comes from the network, already accepted by the
//            address book's rules; the next hop's reply text is only logged
//            (our own reply to the client names the recipient only).
// Concurrency: the io_context thread only (single-threaded, the app's; it
//            drives `resolver` and the SMTP client).
// Errors:    every outcome is a reply value.
#pragma once

#include <chrono>
#include <map>
#include <string>

#include "base/live.hpp"
#include "config/config.hpp"
#include "policy/rules.hpp"
#include "smtp/server/recipient_verifier.hpp"

namespace hikyaku::dns {
class AsyncResolver;
}

namespace hikyaku::delivery {

class SmtpAgent;

class CalloutVerifier final : public smtp::server::RecipientVerifier {
 public:
  struct Settings {
    std::chrono::seconds positive_ttl{std::chrono::hours(1)};
    std::chrono::seconds negative_ttl{std::chrono::minutes(10)};
    size_t max_entries = 10000;  // beyond: the oldest answers are dropped
    // Each step of the question (connect, every reply): the client is
    // waiting for our RCPT reply meanwhile.
    std::chrono::seconds timeout{15};
  };
  // All must outlive the verifier.
  CalloutVerifier(const base::Live<policy::Rules>& rules, dns::AsyncResolver& resolver, const SmtpAgent& agent,
                  Settings settings);

  bool wants(const mail::Address& rcpt) const override;
  net::awaitable<std::optional<mail::Reply>> verify(const mail::Address& rcpt) override;

 private:
  struct Answer {
    std::optional<mail::Reply> refusal;  // nullopt: accepted
    std::chrono::steady_clock::time_point until;
  };
  net::awaitable<std::optional<mail::Reply>> ask(const config::Config& config, const config::Route& rule,
                                                 const mail::Address& rcpt);
  void remember(const std::string& key, std::optional<mail::Reply> refusal, std::chrono::seconds ttl);

  const base::Live<policy::Rules>& rules_;
  dns::AsyncResolver& resolver_;
  const SmtpAgent& agent_;
  Settings settings_;
  std::map<std::string, Answer> cache_;
};

}  // namespace hikyaku::delivery
