// Purpose:   Forward fallback chains (DESIGN.md "Delivery semantics"): what
//            happens to a slot whose forward target refuses or keeps
//            deferring. ForwardFallback is the queue::FallbackPolicy the app
//            installs: 5xx at any stage → the next link at once; 4xx,
//            timeouts, DNS failures → the scheduler retries until the
//            forward's defer_limit (from the slot's first attempt), then the
//            next link; the diverted copy carries X-Hikyaku-Diverted; a
//            notice goes to the owner when the forward says notify; a DSN
//            goes to the sender only for a non-hidden forward, never to the
//            null sender, never about a generated message.
// Chains:    a forward's chain is its `fallback` list with every forward
//            link expanded in place by that forward's own chain (depth
//            first): A = [forward:B, mailbox:x], B = [mailbox:y] gives
//            B, y, x. config forbids cycles, so the expansion is finite.
//            Link n of a slot is chain[n - 1] of the slot's planned target.
// Standards: RFC 3464 (when a DSN is due), RFC 3461 §6.2 (never to the
//            null sender), RFC 5321 §4.2.1 (reply classes, via the agent's
//            outcome kinds), RFC 5322 §3.3 (diversion date).
// Trust:     the configuration is trusted; remote reply texts are not: they
//            are reduced to one quoted line and stripped of every hidden
//            address before they reach a header, a log or a report.
// Concurrency: ForwardFallback is immutable after construction except for
//            what Reports does; its hooks run on scheduler threads
//            concurrently and are thread-safe.
// Errors:    decisions are values; reports are best-effort (a lost notice or
//            DSN is logged, the message itself is never affected).
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.hpp"
#include "queue/scheduler.hpp"
#include "queue/spool.hpp"

namespace hikyaku::policy {

// The [[forward]] options that govern a forward target (nullptr: a plain
// forward without a table — not hidden, no fallback).
const config::Forward* forward_options(const config::Config& config, const mail::Target& target);
bool is_hidden(const config::Config& config, const mail::Target& target);

// The expanded chain of `planned` (empty for mailboxes and plain forwards).
std::vector<mail::Target> fallback_chain(const config::Config& config, const mail::Target& planned);

// Every hidden forward address of the configuration (lowercase).
std::vector<std::string> hidden_addresses(const config::Config& config);

// The reply as it is stated in headers and reports: the remote reply when
// the detail is one ("550 5.7.1 ..."), else "<status> <our description>".
std::string reply_text(const queue::DeliveryOutcome& outcome);

// The X-Hikyaku-Diverted value: `<RFC 5322 date>; reason="<reply>"`, one
// line, quotes and backslashes escaped, no CR/LF from the remote.
std::string diverted_note(std::chrono::system_clock::time_point when, std::string_view reply);

// What the owner's notice states (delivery::Reporter builds and queues it).
struct NoticeFacts {
  std::string forward_to;  // the forward address (the owner's, maybe hidden)
  std::string recipient;   // the original recipient (local address)
  std::string reply;       // the remote reply that caused the diversion
  std::string holder;      // where the message is now: "mailbox ituki-gm"
  std::chrono::system_clock::time_point when{};
  config::Seconds give_up{900};  // the notice's own defer limit
};

// What a DSN states about one failed slot.
struct DsnFacts {
  std::string recipient;  // original recipient (Final-Recipient)
  std::string status;
  std::string reply;      // redacted
  bool expired = false;
  std::chrono::system_clock::time_point when{};
};

// Generated messages leave through this interface (delivery::Reporter).
class Reports {
 public:
  virtual ~Reports() = default;
  virtual void notice(const queue::SpooledMessage& original, const NoticeFacts& facts) = 0;
  virtual void dsn(const queue::SpooledMessage& original, const DsnFacts& facts) = 0;
};

class ForwardFallback final : public queue::FallbackPolicy {
 public:
  // `reports` may be null (no notices or DSNs, e.g. in tests); it must
  // outlive this object.
  ForwardFallback(const config::Config& config, Reports* reports);

  std::optional<mail::Target> next(const queue::TargetState& slot, const queue::DeliveryOutcome& outcome) override;
  std::optional<Diversion> divert(const queue::SpooledMessage& message, const queue::TargetState& slot,
                                  const queue::DeliveryOutcome& outcome, base::Clock::time_point now) override;
  bool should_divert(const queue::SpooledMessage& message, const queue::TargetState& slot,
                     base::Clock::time_point now) override;
  std::optional<base::Clock::time_point> deadline(const queue::SpooledMessage& message,
                                                  const queue::TargetState& slot) override;
  void diverted(const queue::SpooledMessage& message, const queue::TargetState& from, const queue::TargetState& to,
                const queue::DeliveryOutcome& outcome) override;
  void failed(const queue::SpooledMessage& message, const queue::TargetState& slot,
              const queue::DeliveryOutcome& outcome) override;
  std::string describe(const mail::Target& target) override;
  std::string redact(std::string text) override;

  // Was any forward on the slot's path so far (planned target and links
  // 1..link) hidden? Then nothing about the slot may reach the sender.
  bool path_hidden(const queue::TargetState& slot) const;

 private:
  // The defer limit of the slot's current link (nullopt: not a forward, or
  // no limit applies to this message's kind).
  std::optional<config::Seconds> defer_limit(const queue::SpooledMessage& message,
                                             const queue::TargetState& slot) const;
  bool has_next(const queue::TargetState& slot) const;

  const config::Config& config_;
  Reports* reports_;
  std::vector<std::string> hidden_;
};

}  // namespace hikyaku::policy
