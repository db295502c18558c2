#include "delivery/forward_transform.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "auth/arc/sealer.hpp"
#include "auth/common/body_hashes.hpp"
#include "auth/common/message.hpp"
#include "auth/dkim/signer.hpp"
#include "auth/dmarc/from_rewrite.hpp"
#include "auth/inbound/checker.hpp"
#include "mail/address.hpp"
#include "base/file.hpp"
#include "base/log.hpp"
#include "base/strings.hpp"
#include "policy/forwards.hpp"
#include "smtp/protocol/server_reply.hpp"

namespace hikyaku::delivery {
namespace {

namespace common = auth::common;
namespace dmarc = auth::dmarc;

std::shared_ptr<spdlog::logger> log() { return base::logger("forward-auth"); }

std::string prop(const common::AuthResult& r, std::string_view key) {
  for (const auto& [k, v] : r.properties)
    if (k == key) return v;
  return {};
}

const common::AuthResult* first(const common::AuthenticationResults& ar, std::string_view method) {
  for (const auto& r : ar.results)
    if (r.method == method) return &r;
  return nullptr;
}

auth::spf::Result spf_result(std::string_view s) {
  using R = auth::spf::Result;
  for (R r : {R::none, R::neutral, R::pass, R::fail, R::softfail, R::temperror, R::permerror})
    if (auth::spf::to_string(r) == s) return r;
  return R::none;
}

DmarcAction action_of(const config::Config& config, const mail::Target& target) {
  static const config::Forward defaults{};
  const config::Forward* f = policy::forward_options(config, target);
  const std::string& mode = f != nullptr ? f->dmarc : defaults.dmarc;
  if (mode == "divert") return DmarcAction::divert;
  if (mode == "unchanged") return DmarcAction::unchanged;
  return DmarcAction::rewrite_from;
}

// What we sign must be what the receiver gets. The SMTP client breaks a
// line longer than 998 octets and makes a bare LF CRLF as it sends
// (smtp::protocol::WireEncoder): done after signing, that would change the
// text under our DKIM and ARC signatures. So the text to be signed is given
// its wire form first (the common message, short CRLF lines, is left as it
// is: the encoding only ever adds octets), and a large message's body is
// hashed in that form; the client then has nothing left to change.
void to_wire_lines(std::string& text) {
  using smtp::protocol::WireEncoder;
  if (WireEncoder::size(text, WireEncoder::Mode::crlf_lines) == text.size()) return;
  text = smtp::protocol::crlf_lines(text);
}

// The body hashes our signers use, over a large message's body (its file)
// in its wire form.
base::Result<common::BodyHashes> wire_body_hashes(const mail::Message& message) {
  using smtp::protocol::WireEncoder;
  common::BodyHashes hashes;
  for (auto type : {crypto::KeyType::rsa, crypto::KeyType::ed25519})
    hashes.want(auth::dkim::signing_body_hash_key(type));
  WireEncoder encoder(WireEncoder::Mode::crlf_lines);
  std::string wire;
  const mail::Message body_only{std::string(), message.body};
  auto st = mail::for_each_piece(body_only, [&](std::string_view piece) {
    wire.clear();
    encoder.add(piece, wire);
    hashes.update(wire);
    return base::Status{};
  });
  if (!st) return st.error();
  wire.clear();
  encoder.finish(wire);
  hashes.update(wire);
  hashes.finish();
  return hashes;
}

}  // namespace

base::Result<std::shared_ptr<ForwardTransform>> ForwardTransform::create(const config::Config& config,
                                                                         const dmarc::PublicSuffixList* psl) {
  auto t = std::make_shared<ForwardTransform>(psl);
  for (const auto& d : config.domains) {
    if (!d.dkim || d.dkim_selector.empty() || d.dkim_key.empty()) continue;
    // A configured key that cannot be read is a mistake to fix before mail
    // flows, not a reason to forward unsigned (Gmail refuses more of that).
    auto text = base::read_file(d.dkim_key);
    if (!text)
      return base::make_error("domain " + d.name + ": DKIM key: " + text.error().message + " (create it with `hikyaku dkim keygen " +
                              d.name + " --config " + config.source.string() + "`, or set dkim = false)");
    auto key = crypto::load_private_key(*text);
    if (!key) return base::make_error("domain " + d.name + ": DKIM key " + d.dkim_key.string() + ": " +
                                      key.error().message);
    t->keys_.emplace(d.name, SigningKey{d.name, d.dkim_selector, std::move(key).value()});
  }
  return t;
}

const SigningKey* ForwardTransform::key_for(std::string_view domain) const {
  auto it = keys_.find(base::to_lower(domain));
  return it == keys_.end() ? nullptr : &it->second;
}

std::vector<std::pair<std::string, std::string>> ForwardTransform::signing_identities() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& [domain, key] : keys_) out.emplace_back(domain, key.selector);
  return out;
}

std::chrono::system_clock::time_point ForwardTransform::now() const {
  return fixed_now_ ? *fixed_now_ : std::chrono::system_clock::now();
}

Assessment ForwardTransform::assess(const config::Config& config, const queue::DeliveryRequest& request, std::string_view message,
                                    dns::Resolver& dns) const {
  Assessment a;
  auto parsed = common::parse_message(message);
  a.results = auth::inbound::own_results(parsed, config.hostname);
  a.author = auth::common::find_author(parsed);
  a.action = action_of(config, request.target);
  if (!a.results || !a.author) return a;

  // Re-evaluate DMARC from what we saw at receipt (SPF cannot be checked
  // again: the client is gone; DKIM results are as recorded). Only a pass
  // matters here: a message that failed DMARC here is forwarded as it is.
  const auto* d = first(*a.results, "dmarc");
  if (d == nullptr || d->result != "pass") return a;
  dmarc::Input in;
  in.from_domain = a.author->domain;
  if (const auto* s = first(*a.results, "spf")) {
    in.spf = spf_result(s->result);
    std::string id = prop(*s, "smtp.mailfrom");
    // smtp.mailfrom is an address, or a domain alone (a sender's quoted
    // local part is not written: auth/inbound/checker.cpp).
    in.spf_domain = id.empty()                           ? base::to_lower(prop(*s, "smtp.helo"))
                    : id.find('@') == std::string::npos ? base::to_lower(id)
                                                        : mail::domain_of(id);
  }
  for (const auto& r : a.results->results)
    if (r.method == "dkim" && r.result != "none") in.dkim.push_back({r.result == "pass", prop(r, "header.d")});
  dmarc::Options options;
  if (config.dmarc.method == "psl" && psl_ != nullptr) {
    options.discovery = dmarc::Discovery::public_suffix_list;
    options.psl = psl_;
  }
  a.dmarc = dmarc::evaluate(dns, in, options);
  // RFC 7489 §4.2 / §6.6: aligned SPF alone carried it, under an enforcing
  // policy; a forward loses SPF, so the receiver will see DMARC fail.
  a.only_spf_under_enforcement = dmarc::passed_only_via_spf_under_enforcement(*a.dmarc);
  return a;
}

std::optional<policy::AttemptResult> ForwardTransform::divert(const config::Config& config,
                                                             const queue::DeliveryRequest& request,
                                                             std::string_view message, dns::Resolver& dns) const {
  if (request.origin != policy::Origin::received || request.target.kind != mail::Target::Kind::forward)
    return std::nullopt;
  if (action_of(config, request.target) != DmarcAction::divert) return std::nullopt;
  Assessment a = assess(config, request, message, dns);
  if (!a.only_spf_under_enforcement) return std::nullopt;
  // RFC 7372 §3.2: 5.7.26 "multiple authentication checks failed" is what
  // Gmail answers for DMARC; the fallback policy diverts on any 5xx.
  return policy::AttemptResult{policy::AttemptResult::Kind::permanent, "5.7.26",
                               "diverted: DMARC would fail after forwarding (author domain " + a.author->domain +
                                   " policy " + std::string(dmarc::to_string(a.dmarc->requested)) +
                                   ", no aligned DKIM signature)",
                               policy::AttemptResult::Cause::dmarc_divert};
}

bool ForwardTransform::may_sign(const config::Config& config, const queue::DeliveryRequest& request) const {
  if (request.origin != policy::Origin::received) return !keys_.empty();  // signed for its From domain
  const config::Domain* domain = config.find_domain(mail::domain_of(request.recipient));
  return domain != nullptr && key_for(domain->name) != nullptr;  // ARC, or a From rewrite
}

base::Result<mail::Message> ForwardTransform::apply(const config::Config& config, const queue::DeliveryRequest& request,
                                                    mail::Message message,
                                                    dns::Resolver& dns) const {
  const auto when = now();
  // Every change is to the header section (message.text); a large
  // message's body stays in its file and is hashed from there, once, when
  // something is signed.
  std::shared_ptr<const common::BodyHashes> hashes;
  auto body_hashes = [&]() -> base::Result<const common::BodyHashes*> {
    if (!message.body) return nullptr;  // the signer hashes the body in memory
    if (!hashes) {
      auto computed = wire_body_hashes(message);
      if (!computed) return computed.error();
      hashes = std::make_shared<const common::BodyHashes>(std::move(computed).value());
    }
    return hashes.get();
  };
  std::string& text = message.text;
  if (may_sign(config, request)) to_wire_lines(text);

  // Item 8: what we originate (notices, DSNs) and what our users submit
  // is signed for its From domain (intake checked that a submitted From is
  // one of the login's send_as addresses).
  if (request.origin != policy::Origin::received) {
    auto parsed = common::parse_message(text);
    auto author = auth::common::find_author(parsed);
    if (!author) return message;
    const SigningKey* k = key_for(author->domain);
    if (k == nullptr) return message;
    auth::dkim::SignOptions o;
    o.domain = k->domain;
    o.selector = k->selector;
    auto bh = body_hashes();
    if (!bh) return bh.error();
    o.body_hashes = *bh;
    auto sig = auth::dkim::sign(text, k->key, o, when);
    if (!sig) {
      log()->error("{}: cannot sign generated message for {}: {}", request.queue_id, k->domain, sig.error().message);
      return message;
    }
    text.insert(0, *sig);  // in place: the caller left room (smtp_agent.cpp)
    return message;
  }

  const std::string local_domain = mail::domain_of(request.recipient);
  const config::Domain* domain = config.find_domain(local_domain);
  const SigningKey* key = domain != nullptr ? key_for(domain->name) : nullptr;
  Assessment a = assess(config, request, text, dns);

  // (a) DMARC-aware forwarding.
  if (a.only_spf_under_enforcement && a.action == DmarcAction::rewrite_from) {
    if (key == nullptr) {
      log()->warn("{}: DMARC of {} rests on SPF alone but domain {} has no DKIM key: forwarded unchanged",
                  request.queue_id, a.author->domain, local_domain);
    } else {
      text = auth::dmarc::rewrite_from(text, *a.author, key->domain);
      auth::dkim::SignOptions o;
      o.domain = key->domain;
      o.selector = key->selector;
      auto bh = body_hashes();
      if (!bh) return bh.error();
      o.body_hashes = *bh;
      auto sig = auth::dkim::sign(text, key->key, o, when);
      if (sig) {
        text.insert(0, *sig);
        log()->info("{}: From rewritten to {} (author domain {} p={} passed DMARC only via SPF)", request.queue_id,
                    key->domain, a.author->domain, dmarc::to_string(a.dmarc->requested));
      } else {
        log()->error("{}: DKIM signing failed for {}: {}", request.queue_id, key->domain, sig.error().message);
      }
    }
  }

  // (b) ARC (RFC 8617 §5.1): seal what we saw at receipt.
  if (domain != nullptr && domain->arc && key != nullptr) {
    std::string results_text =
        a.results ? a.results->value() : common::AuthenticationResults{config.hostname, {}}.value();
    auth::arc::SealOptions so;
    auto bh = body_hashes();
    if (!bh) return bh.error();
    so.body_hashes = *bh;
    auto set = auth::arc::seal(text, results_text, key->domain, key->selector, key->key, when, so);
    if (set) {
      text.insert(0, set->prefix());
    } else {
      // An existing chain we cannot extend (RFC 8617 §5.1.1): send without.
      log()->warn("{}: no ARC set added: {}", request.queue_id, set.error().message);
    }
  }
  return message;
}

}  // namespace hikyaku::delivery
