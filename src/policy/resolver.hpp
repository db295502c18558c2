// Purpose:   Decide what happens to one recipient address: is it ours, and
//            which targets (mailboxes, forwards) receive it. The SMTP session
//            asks at RCPT time (no backscatter: unknown local users are
//            refused there, never bounced later); the queue stores the plan.
// Standards: RFC 5321 §3.3 (RCPT replies), §7.1 (no open relay).
// Trust:     addresses come from the network; the config is trusted.
// Errors:    verdicts are values.
#pragma once

#include <string>
#include <vector>

#include "config/config.hpp"
#include "mail/address.hpp"

namespace hikyaku::policy {

enum class RcptVerdict {
  accept,        // 250 2.1.5
  unknown_user,  // 550 5.1.1: local domain, no such address
  relay_denied,  // 554 5.7.1: not our domain and not authenticated
};

// The ordered targets for one recipient (DESIGN.md "delivery plan").
struct DeliveryPlan {
  std::vector<mail::Target> targets;
};

class Resolver {
 public:
  explicit Resolver(const config::Config& config) : config_(config) {}

  RcptVerdict check_recipient(const mail::Address& rcpt, bool authenticated) const;
  // The plan for an accepted local recipient (empty for a relayed one).
  DeliveryPlan plan(const mail::Address& rcpt) const;

 private:
  const config::Config& config_;
};

}  // namespace hikyaku::policy
