// Purpose:   Loop prevention for forwards (DESIGN.md "Loops are stopped")
//            and the headers every forwarded copy carries. A message is not
//            forwarded again when it already passed through this server for
//            the same recipient (X-Forwarded-For — or the
//            X-Hikyaku-Forwarded-For older versions wrote — or Delivered-To
//            naming the original recipient), or when the forward address is
//            in one of our own local domains. The SMTP agent asks
//            loop_reason() before it sends and reports a permanent 5.4.6
//            (AttemptResult::Cause::loop), which decide() turns into an
//            immediate diversion. An MX resolving to our own listener is the
//            SMTP agent's own 5.4.6.
// Standards: RFC 5321 §6.3 (loop detection; Received counting is the SMTP
//            server's), RFC 3463 (5.4.6 routing loop detected).
// Trust:     the header section is untrusted and only compared. The
//            headers we add name the original recipient (ours, public) and
//            the forward address the copy is sent to: a hidden address only
//            ever in the copy sent to that address itself (its owner's),
//            never in a diverted copy, notice or DSN — add_forward_headers()
//            is called by the SMTP agent on the copy it sends, nowhere else.
// Concurrency: pure functions.
// Errors:    none.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "config/config.hpp"
#include "mail/target.hpp"
#include "policy/slot.hpp"

namespace hikyaku::policy {

// Why forwarding `recipient`'s copy to `target` must not happen (nullopt:
// go ahead). `header_section` is the message's.
std::optional<std::string> loop_reason(const config::Config& config, std::string_view header_section, Origin origin,
                                       std::string_view recipient, const mail::Target& target);

// A forwarded copy as sent (Google's forwarding guidance, 2026-03):
// X-Hikyaku-Diverted: `diverted` (when the slot was diverted) becomes the
// first header; for received mail (notices, DSNs and submitted mail carry
// neither) "X-Forwarded-To: <forward_to>" (the address this copy is sent
// to) and "X-Forwarded-For: <recipient>" (the original recipient, what
// loop_reason() looks for) go right after our own Received field, which the
// SMTP server always puts first. Nothing else in the message changes.
std::string add_forward_headers(std::string message, Origin origin, std::string_view recipient,
                                std::string_view forward_to, std::string_view diverted);

}  // namespace hikyaku::policy
