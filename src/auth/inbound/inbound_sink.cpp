#include "auth/inbound/inbound_sink.hpp"

#include "auth/inbound/checker.hpp"
#include "base/log.hpp"

namespace hikyaku::auth::inbound {

InboundSink::InboundSink(const config::Config& config, dns::Resolver& resolver, smtp::server::MessageSink& inner,
                         const SrsBounces* srs, const dmarc::PublicSuffixList* psl)
    : config_(config), resolver_(resolver), inner_(inner), srs_(srs), psl_(psl) {}

base::Result<std::string> InboundSink::store(const mail::Envelope& envelope, std::string message) {
  return inner_.store(envelope, std::move(message));
}

bool InboundSink::rejects_for(const mail::Envelope& envelope) const {
  if (envelope.recipients.empty()) return false;
  for (const auto& r : envelope.recipients) {
    const config::Domain* d = config_.find_domain(r.domain);
    if (d == nullptr || d->dmarc_inbound != "reject") return false;
  }
  return true;
}

InboundSink::Decision InboundSink::decide(const mail::Envelope& envelope, std::string_view message,
                                          dns::Resolver& dns) const {
  Input in;
  in.message = message;
  if (envelope.sender) in.mail_from = envelope.sender->str();
  in.helo = envelope.helo;
  in.client_ip = envelope.client_ip;
  Options options;
  options.authserv_id = config_.hostname;
  if (config_.dmarc.method == "psl" && psl_ != nullptr) {
    options.discovery = dmarc::Discovery::public_suffix_list;
    options.psl = psl_;
  }
  Verdict v = check(dns, in, options);

  Decision d;
  std::string dkim_summary;
  for (const auto& r : v.dkim) {
    if (!dkim_summary.empty()) dkim_summary += ",";
    dkim_summary += std::string(dkim::status_name(r.status));
    if (!r.domain.empty()) dkim_summary += "(" + r.domain + ")";
  }
  d.summary = fmt::format("from=<{}> client=[{}] spf={} dkim={} dmarc={} (policy={} from={}) arc={}",
                          envelope.sender_str(), envelope.client_ip, spf::to_string(v.spf.result), dkim_summary,
                          dmarc::to_string(v.dmarc.result), dmarc::to_string(v.dmarc.applied),
                          v.author ? v.author->domain : std::string("?"), arc::chain_status_name(v.arc.status));

  // RFC 7489 §6.6.4 / §10.3: reject at SMTP time, only when the domain
  // chose it; the default records the result and delivers (DESIGN.md: the
  // owner decides, nothing is lost).
  if (v.dmarc_reject() && rejects_for(envelope)) {
    d.refusal = mail::Reply(550, "5.7.1", "Message rejected: DMARC policy of the author domain");
  } else {
    d.stamped = stamp(message, v.results);
  }
  return d;
}

base::Result<smtp::server::Admission> InboundSink::admit(const mail::Envelope& envelope, std::string message) {
  // Authenticated submission (later) is our own users' mail: not checked here.
  if (!envelope.auth_user.empty()) return inner_.admit(envelope, std::move(message));
  Decision d = decide(envelope, message, resolver_);
  base::logger("inbound-auth")->info("{}", d.summary);
  if (d.refusal) return smtp::server::Admission::refused(std::move(*d.refusal));
  return inner_.admit(envelope, std::move(d.stamped));
}

std::optional<base::Result<smtp::server::Admission>> InboundSink::admit_now(const mail::Envelope& envelope,
                                                                            std::string& message) {
  if (!envelope.auth_user.empty()) return inner_.admit_now(envelope, message);
  dns::CacheOnlyResolver cached(resolver_);
  Decision d = decide(envelope, message, cached);
  if (cached.missed()) return std::nullopt;  // decided on a worker, with the lookups it needs
  std::optional<base::Result<smtp::server::Admission>> admitted;
  if (d.refusal) {
    admitted = smtp::server::Admission::refused(std::move(*d.refusal));
  } else {
    admitted = inner_.admit_now(envelope, d.stamped);
    if (!admitted) return std::nullopt;
  }
  base::logger("inbound-auth")->info("{}", d.summary);
  message.clear();  // taken, as admit() would have
  return admitted;
}

std::optional<mail::Reply> InboundSink::screen_recipient(const mail::Address& rcpt) const {
  if (srs_ != nullptr) return srs_->screen(rcpt);
  return inner_.screen_recipient(rcpt);
}

}  // namespace hikyaku::auth::inbound
