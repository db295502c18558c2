#include "policy/address_book.hpp"

#include <algorithm>

#include "base/strings.hpp"
#include "policy/forwards.hpp"
#include "srs/srs.hpp"

namespace hikyaku::policy {

AddressBook::AddressBook(const config::Config& config) : config_(config) {}

AddressBook::AddressBook(const config::Config& config, std::vector<std::string> srs_secrets,
                         const base::Clock& clock)
    : config_(config) {
  if (config.srs.domain.empty() || srs_secrets.empty()) return;
  srs::Config c;
  c.secrets = std::move(srs_secrets);
  // Every hidden forward signs with its own derived key (srs.hpp), so a
  // bounce tells us, without state, that it belongs to a hidden forward.
  c.identities = hidden_addresses(config);
  srs_ = std::make_unique<srs::Rewriter>(std::move(c), clock);
}

AddressBook::~AddressBook() = default;

bool AddressBook::is_srs(const mail::Address& rcpt) const {
  return srs_ && base::iequals(rcpt.domain, config_.srs.domain) && srs::is_srs(rcpt.local);
}

bool AddressBook::is_gateway_recipient(const config::Route& rule, const mail::Address& rcpt) {
  const std::string key = base::to_lower(rcpt.key());
  return std::find(rule.recipients.begin(), rule.recipients.end(), key) != rule.recipients.end();
}

RcptVerdict AddressBook::check_recipient(const mail::Address& rcpt, bool authenticated) const {
  // SRS bounce addresses are valid or not by their hash and age.
  if (is_srs(rcpt)) return srs_plan(rcpt).empty() ? RcptVerdict::bad_srs : RcptVerdict::accept;
  const config::Route* relay = config_.relay_route(rcpt.key());
  // Issue 14: the gateway accepts only the recipients it knows the next
  // hop has (a static list), so it never accepts mail it would bounce.
  // With verify_recipients the next hop is asked before 250 (the
  // session's RecipientVerifier); here it is a gateway recipient.
  if (relay != nullptr && (is_gateway_recipient(*relay, rcpt) || relay->verify_recipients)) return RcptVerdict::accept;
  if (config_.is_local_domain(rcpt.domain)) {
    // RFC 5321 §3.3: refuse unknown users at RCPT, never bounce later.
    const bool known = config_.find_address(rcpt.key()) != nullptr || is_postmaster(rcpt);
    return known ? RcptVerdict::accept : RcptVerdict::unknown_user;
  }
  // RFC 5321 §7.1: relaying only for authenticated users.
  return authenticated ? RcptVerdict::accept : RcptVerdict::relay_denied;
}

std::vector<mail::Target> AddressBook::plan(const mail::Address& rcpt, bool authenticated) const {
  if (is_srs(rcpt)) return srs_plan(rcpt);
  return with_copies(route_plan(rcpt, authenticated));
}

std::vector<mail::Target> AddressBook::route_plan(const mail::Address& rcpt, bool authenticated) const {
  const bool local = config_.is_local_domain(rcpt.domain);
  if (const config::Route* relay = config_.relay_route(rcpt.key())) {
    // A local recipient that a rule sends elsewhere, or a gateway
    // recipient: relayed unchanged (a submitted message to a gateway
    // recipient is a submitted remote recipient, below).
    if ((local && check_recipient(rcpt, false) == RcptVerdict::accept) ||
        (!authenticated && (is_gateway_recipient(*relay, rcpt) || relay->verify_recipients)))
      return {{mail::Target::Kind::relay, rcpt.str()}};
  }
  if (const auto* rule = config_.find_address(rcpt.key())) return rule->deliver;
  if (is_postmaster(rcpt)) return {{mail::Target::Kind::mailbox, config_.postmaster}};
  if (authenticated && !local) return {{mail::Target::Kind::forward, rcpt.str()}};
  return {};
}

// Issue 14 item 7: a rule's copy_to keeps a copy of every message it relays.
std::vector<mail::Target> AddressBook::with_copies(std::vector<mail::Target> plan) const {
  const size_t n = plan.size();
  for (size_t i = 0; i < n; ++i) {
    if (!plan[i].remote()) continue;
    const config::Route* rule = config_.relay_route(plan[i].value);
    if (rule == nullptr || rule->copy_to.empty()) continue;
    mail::Target copy{mail::Target::Kind::mailbox, rule->copy_to};
    if (std::find(plan.begin(), plan.end(), copy) == plan.end()) plan.push_back(std::move(copy));
  }
  return plan;
}

bool AddressBook::may_send_as(std::string_view login, const mail::Address& address) const {
  const config::Mailbox* mailbox = config_.find_mailbox(login);
  if (mailbox == nullptr) return false;
  const std::string wanted = base::to_lower(address.str());
  for (const auto& allowed : mailbox->send_as)
    if (allowed == wanted) return true;  // send_as is stored lower case
  return false;
}

// RFC 5321 §4.5.1: postmaster@ every local domain is accepted (the local
// part without regard to case), into the postmaster mailbox, when no
// [[address]] names it.
bool AddressBook::is_postmaster(const mail::Address& rcpt) const {
  return base::iequals(rcpt.local, "postmaster") && config_.is_local_domain(rcpt.domain) &&
         !config_.postmaster.empty();
}

std::vector<mail::Target> AddressBook::srs_plan(const mail::Address& rcpt) const {
  auto decoded = srs_->decode(rcpt);
  if (decoded.error != srs::Errc::ok) return {};
  if (decoded.identity.empty()) {
    // An ordinary forward: reverse the bounce to the original sender (an
    // SRS1 address reverses to the first forwarder's SRS0 address). A
    // sender in one of our own domains (other than the SRS domain, whose
    // senders are not rewritten) gets it as mail to that address: its own
    // plan, as a forward to a local domain would be refused as a loop.
    if (config_.is_local_domain(decoded.address.domain)) return with_copies(route_plan(decoded.address, false));
    return {{mail::Target::Kind::forward, decoded.address.str()}};
  }
  // A hidden forward: its fallback mailbox (the first configured mailbox
  // link of its chain; config guarantees a hidden chain ends in one), never
  // the sender. A removed forward's removed mailbox takes no new mail: the
  // bounce is refused like an unknown recipient.
  mail::Target forward{mail::Target::Kind::forward, decoded.identity};
  for (const auto& link : fallback_chain(config_, forward))
    if (link.kind == mail::Target::Kind::mailbox && config_.find_mailbox(link.value) != nullptr) return {link};
  return {};
}

}  // namespace hikyaku::policy
