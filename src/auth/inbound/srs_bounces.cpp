#include "auth/inbound/srs_bounces.hpp"

#include "base/strings.hpp"
#include "policy/fallback.hpp"

namespace hikyaku::auth::inbound {
namespace {

srs::Config rewriter_config(const config::Config& config, std::vector<std::string> secrets) {
  srs::Config c;
  c.secrets = std::move(secrets);
  // Every hidden forward signs with its own derived key (srs.hpp), so a
  // bounce tells us, without state, that it belongs to a hidden forward.
  c.identities = policy::hidden_addresses(config);
  return c;
}

}  // namespace

SrsBounces::SrsBounces(const config::Config& config, std::vector<std::string> secrets, const base::Clock& clock)
    : config_(config), rewriter_(rewriter_config(config, std::move(secrets)), clock) {}

bool SrsBounces::applies(const mail::Address& rcpt) const {
  return !config_.srs.domain.empty() && base::iequals(rcpt.domain, config_.srs.domain) && srs::is_srs(rcpt.local);
}

std::optional<mail::Reply> SrsBounces::screen(const mail::Address& rcpt) const {
  if (!applies(rcpt)) return std::nullopt;
  if (plan(rcpt)) return mail::Reply(250, "2.1.5", "Ok");
  // The reply says nothing about which check failed (hash or age): it is
  // the same to a prober either way.
  return mail::Reply(550, "5.1.1", "No such user here (invalid or expired SRS address)");
}

std::optional<std::vector<mail::Target>> SrsBounces::plan(const mail::Address& rcpt) const {
  if (!applies(rcpt)) return std::nullopt;
  auto decoded = rewriter_.decode(rcpt);
  if (decoded.error != srs::Errc::ok) return std::nullopt;
  if (decoded.identity.empty()) {
    // An ordinary forward: reverse the bounce to the original sender
    // (an SRS1 address reverses to the first forwarder's SRS0 address).
    return std::vector<mail::Target>{{mail::Target::Kind::forward, decoded.address.str()}};
  }
  // A hidden forward: its fallback mailbox (the first mailbox link of its
  // chain; config guarantees a hidden chain ends in one), never the sender.
  mail::Target forward{mail::Target::Kind::forward, decoded.identity};
  for (const auto& link : policy::fallback_chain(config_, forward))
    if (link.kind == mail::Target::Kind::mailbox) return std::vector<mail::Target>{link};
  return std::nullopt;
}

}  // namespace hikyaku::auth::inbound
