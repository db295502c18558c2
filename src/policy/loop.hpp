// Purpose:   Loop prevention for forwards (issue 3 item 8, DESIGN.md "Loops
//            are stopped") and the headers every forwarded copy carries.
//            A message is not forwarded again when it already passed through
//            this server for the same recipient (X-Hikyaku-Forwarded-For or
//            Delivered-To naming the original recipient), or when the
//            forward address is in one of our own local domains. LoopGuard
//            answers such deliveries with a permanent 5.4.6, so the
//            FallbackPolicy diverts them at once to the fallback mailbox
//            with that reason. The SMTP agent adds the third check (the MX
//            resolves to our own listener: 5.4.6 too).
// Standards: RFC 5321 §6.3 (loop detection; Received counting is the SMTP
//            server's), RFC 3463 (5.4.6 routing loop detected).
// Trust:     the header section is untrusted and only compared; the headers
//            we add name the original recipient (ours, public), never a
//            hidden forward address.
// Concurrency: LoopGuard::deliver is thread-safe (reads the spool file,
//            then calls the wrapped agent on the same thread).
// Errors:    outcomes; an unreadable spool file is temporary 4.3.0.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "queue/delivery_agent.hpp"

namespace hikyaku::policy {

// Why this forward must not happen (nullopt: go ahead).
std::optional<std::string> loop_reason(const config::Config& config, std::string_view header_section,
                                       const queue::DeliveryRequest& request);

// A forwarded copy as sent: X-Hikyaku-Diverted (when the slot was
// diverted) becomes the first header; X-Hikyaku-Forwarded-For: <original
// recipient> (received mail only; notices and DSNs carry neither) goes right
// after our own Received field, which the SMTP server always puts first.
std::string add_forward_headers(const queue::DeliveryRequest& request, std::string message);

class LoopGuard final : public queue::DeliveryAgent {
 public:
  // `inner` (the SMTP agent) must outlive the guard.
  LoopGuard(const config::Config& config, queue::DeliveryAgent& inner) : config_(config), inner_(inner) {}
  void deliver(const queue::DeliveryRequest& request, std::function<void(queue::DeliveryOutcome)> done) override;
  // The check from the bytes in memory; a loop (rare) is left to deliver().
  bool deliver_now(const queue::DeliveryRequest& request, std::function<void(queue::DeliveryOutcome)> done) override;

 private:
  const config::Config& config_;
  queue::DeliveryAgent& inner_;
};

}  // namespace hikyaku::policy
