// Purpose:   The vocabulary of the delivery contract, shared by the policy
//            that decides (delivery_policy.hpp), the queue that records and
//            applies (queue/spool.hpp, queue/scheduler.hpp) and the delivery
//            agents that report: a recipient's plan, one delivery slot's
//            durable state, and the result of one attempt.
// Standards: RFC 5321 §4.2.1 (reply classes → AttemptResult::Kind),
//            RFC 3463 (enhanced status codes).
// Trust:     plain values; `detail` and `last_reply` hold remote text and
//            are redacted by the policy before they reach a header or a log.
// Concurrency: values only.
// Errors:    none.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mail/address.hpp"
#include "mail/target.hpp"

namespace hikyaku::policy {

using TimePoint = std::chrono::system_clock::time_point;

// Where a queued message came from. Generated messages are never diverted
// and never bounced (notices, DSNs). Submitted mail (an authenticated user's,
// issue 13) goes out as its author wrote it: no SRS, no forward headers, no
// ARC; signed for its From domain.
enum class Origin { received, submitted, notice, dsn };
// "received", "submitted", "notice", "dsn": the spool header's word.
std::string_view to_string(Origin origin);

// The ordered targets of one recipient (DESIGN.md "delivery plan").
struct RecipientPlan {
  RecipientPlan() = default;
  RecipientPlan(std::string recipient_in, std::vector<mail::Target> targets_in)
      : recipient(std::move(recipient_in)), targets(std::move(targets_in)) {}

  std::string recipient;              // the address as in the envelope (Address::str())
  std::vector<mail::Target> targets;  // at least one
};

enum class SlotStatus { pending, delivered, failed };
std::string_view to_string(SlotStatus status);

// The durable state of one delivery slot (one recipient × one plan target).
struct SlotState {
  std::string recipient;
  mail::Target target;          // current target; a fallback link replaces it
  unsigned link = 0;            // 0 = planned target, n = n-th link of its chain
  SlotStatus status = SlotStatus::pending;
  unsigned attempts = 0;        // attempts on the current link
  TimePoint first_attempt{};    // on the current link; epoch = never attempted
  TimePoint next_attempt{};     // epoch = as soon as possible
  std::string last_reply;       // "4.2.2 mailbox full" (status + detail)
  // The slot's target in the delivery plan (never replaced): the root of
  // its fallback chain.
  mail::Target planned;
  // Set once the slot moved to a fallback link: the X-Hikyaku-Diverted
  // header value ("<date>; reason=...") the diverted copy carries.
  std::string diverted;

  bool final() const { return status != SlotStatus::pending; }
};

// What a delivery agent reports about one attempt. `cause` names the rows
// of the contract that are not a plain reply of the far side.
struct AttemptResult {
  enum class Kind { delivered, temporary, permanent };
  enum class Cause {
    reply,         // the far side's (or the local mailbox's) answer
    loop,          // 5.4.6: the forward would loop (policy/loop.hpp)
    dmarc_divert,  // 5.7.26: dmarc = "divert" and DMARC would fail after forwarding
    rate_limited,  // the destination is paused after a rate-limit reply: no connection was made
    local,         // our own trouble (unreadable spool file, no agent)
  };
  Kind kind = Kind::temporary;
  std::string status;  // enhanced status, e.g. "2.0.0", "4.4.1", "5.7.1"
  std::string detail;  // the remote reply or local error, for logs and DSNs
  Cause cause = Cause::reply;
  // Epoch: none. Else the destination takes no connection before then (a
  // rate-limit pause, DESIGN.md): the retry waits for it, so a message never
  // waits inside its agent.
  TimePoint not_before{};
  // How long the attempt took, hand-over to result (real time), measured by
  // the scheduler; < 0: not timed (a paused destination's answer).
  double seconds = -1;
  // The far side's reply came over TLS (remote attempts).
  bool tls = false;
};

}  // namespace hikyaku::policy
