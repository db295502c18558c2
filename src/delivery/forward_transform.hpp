// Purpose:   What hikyaku adds to a message it forwards (issue 4), plugged
//            applied by the SmtpAgent before it sends, and the signature on
//            what it originates:
//            (a) DMARC-aware forwarding: mail whose author domain asks for
//                quarantine/reject and that passed DMARC here only through
//                SPF (no aligned DKIM signature) cannot pass after a forward.
//                The forward's `dmarc` option decides: "rewrite-from" (From
//                becomes "Name via <domain>" <noreply@<domain>>, the author
//                goes to Reply-To — unless one exists — and X-Original-From,
//                and we sign with <domain>'s key, aligned; the rewrite
//                itself is auth/dmarc/from_rewrite.hpp), "divert" (the
//                SmtpAgent reports 5.7.26 before sending, cause
//                dmarc_divert, and the delivery policy diverts at once) or
//                "unchanged". Mail with an aligned valid
//                author signature is never rewritten; mail that failed DMARC
//                here is never rewritten either (that would launder it).
//            (b) ARC: a new ARC set (RFC 8617) with our receipt-time
//                Authentication-Results as ARC-Authentication-Results and cv
//                from our ARC validation, signed with the recipient domain's
//                key, when that [[domain]] has arc = true and a key.
//            (c) notices and DSNs we originate, and mail our users submit
//                (issue 13), carry a DKIM signature
//                aligned with their From domain (apply() signs them with
//                the key loaded at start).
//            <domain> is the original recipient's [[domain]] (the domain that
//            owns the forward). Whatever may be signed is first put in its
//            wire form (lines over 998 octets broken as the SMTP client
//            breaks them), so that our signatures verify where it arrives.
// Standards: RFC 7489 §3.1 / §6.6 (alignment, policy), RFC 6376 §5 (signing),
//            RFC 8617 §5.1 (sealing), RFC 5321 §4.5.3.1.6
//            (line length), RFC 5322 §3.6.2-3.6.3 (From, Reply-To),
//            RFC 8601 (our results, read back), RFC 3463 / RFC 7372 (5.7.26).
// Trust:     the message and our Authentication-Results come from the spool
//            (ours, forged copies removed at receipt); private keys are
//            loaded once and stay inside crypto/. The hidden forward address
//            is never written into the message.
// Concurrency: immutable after create(); apply()/assess() are const and safe
//            from any thread; they block on the resolver (DMARC discovery),
//            so call them on a worker thread.
// Errors:    apply() never fails a delivery for want of a signature: a key
//            or seal problem is logged and the message goes as it would
//            without that step. create() returns an error for a configured
//            key (a [[domain]] with dkim_key and dkim = true) that is missing
//            or does not load: serve refuses to start rather than forward
//            unsigned.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "auth/common/authentication_results.hpp"
#include "auth/common/author.hpp"
#include "auth/dmarc/evaluate.hpp"
#include "base/result.hpp"
#include "config/config.hpp"
#include "crypto/key.hpp"
#include "dns/resolver.hpp"
#include "queue/delivery_agent.hpp"

namespace hikyaku::delivery {

enum class DmarcAction { unchanged, rewrite_from, divert };

// What the forwarder knows about one message it is about to forward.
struct Assessment {
  std::optional<auth::common::AuthenticationResults> results;  // ours, from receipt
  std::optional<auth::common::Author> author;
  std::optional<auth::dmarc::Evaluation> dmarc;  // re-evaluated from our results
  bool only_spf_under_enforcement = false;        // dmarc::passed_only_via_spf_under_enforcement
  DmarcAction action = DmarcAction::unchanged;    // what this forward will do about it
};

struct SigningKey {
  std::string domain;
  std::string selector;
  crypto::PrivateKey key;
};

class ForwardTransform {
 public:
  // Loads every [[domain]]'s DKIM key (a missing or unloadable one is an
  // Error; dkim = false signs nothing and needs none). `psl` is used when
  // [dmarc] method = "psl".
  static base::Result<std::shared_ptr<ForwardTransform>> create(const config::Config& config,
                                                                const auth::dmarc::PublicSuffixList* psl = nullptr);

  // Each with DNS through `dns` (the DMARC policy discovery of the author
  // domain): a sans-I/O view, so the caller decides how lookups are made.
  // `config` is the generation the delivery attempt runs under (its
  // [[domain]]s and [[forward]] options; `hikyaku reload` may replace it);
  // the keys stay those loaded by create().
  Assessment assess(const config::Config& config, const queue::DeliveryRequest& request, std::string_view message,
                    dns::Resolver& dns) const;
  // The message as it must leave: every change is to its header section
  // (message.text); a large message's body stays in its file, hashed from
  // there when something is signed (an unreadable file is an Error).
  // assess() and divert() read only the header section.
  base::Result<mail::Message> apply(const config::Config& config, const queue::DeliveryRequest& request,
                                    mail::Message message, dns::Resolver& dns) const;
  // Whether apply() may make a signature for this request (an RSA signature
  // is ≈0.3 ms of CPU: such a forward is prepared on the blocking pool).
  bool may_sign(const config::Config& config, const queue::DeliveryRequest& request) const;
  // A permanent 5.7.26 result (cause dmarc_divert) when the forward says
  // dmarc = "divert" and the message cannot pass DMARC after forwarding;
  // nullopt: send it.
  std::optional<policy::AttemptResult> divert(const config::Config& config, const queue::DeliveryRequest& request,
                                              std::string_view message, dns::Resolver& dns) const;

  const SigningKey* key_for(std::string_view domain) const;
  // The domains and selectors of the loaded keys: what a reload must not
  // change (the keys are read once, at start, where they may be root's).
  std::vector<std::pair<std::string, std::string>> signing_identities() const;

  explicit ForwardTransform(const auth::dmarc::PublicSuffixList* psl) : psl_(psl) {}

  // Injected time (tests); default: the system clock.
  void set_now_for_test(std::chrono::system_clock::time_point now) { fixed_now_ = now; }

 private:
  std::chrono::system_clock::time_point now() const;

  const auth::dmarc::PublicSuffixList* psl_;
  std::map<std::string, SigningKey> keys_;  // by lowercase domain
  std::optional<std::chrono::system_clock::time_point> fixed_now_;
};


}  // namespace hikyaku::delivery
