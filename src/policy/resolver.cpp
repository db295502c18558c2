#include "policy/resolver.hpp"

namespace hikyaku::policy {

RcptVerdict Resolver::check_recipient(const mail::Address& rcpt, bool authenticated) const {
  if (config_.is_local_domain(rcpt.domain)) {
    // RFC 5321 §3.3: refuse unknown users at RCPT, never bounce later.
    return config_.find_address(rcpt.key()) != nullptr ? RcptVerdict::accept : RcptVerdict::unknown_user;
  }
  // RFC 5321 §7.1: relaying only for authenticated users.
  return authenticated ? RcptVerdict::accept : RcptVerdict::relay_denied;
}

DeliveryPlan Resolver::plan(const mail::Address& rcpt) const {
  DeliveryPlan plan;
  if (const auto* rule = config_.find_address(rcpt.key())) plan.targets = rule->deliver;
  return plan;
}

}  // namespace hikyaku::policy
